// The signer against AWS's published vectors: the Signature Version 4 test suite
// (aws-sig-v4-test-suite: AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service") and the
// four worked examples of the S3 API reference ("Examples: Signature Calculations"). Each case
// checks the canonical request, the string to sign and the Authorization header separately,
// because a server answers every mistake in any of them with the same SignatureDoesNotMatch.
#include "router/http/sigv4.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace conduit::http {
namespace {

using namespace std::chrono_literals;
using std::chrono::August;
using std::chrono::May;

constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kSessionToken =
    "AQoDYXdzEPT//////////"
    "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIe"
    "oIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0w"
    "q5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDryp"
    "NC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
constexpr const char* kUnreserved =
    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

struct SigningVector {
  std::string name;
  SigV4Request request;
  std::optional<std::string> session_token;
  std::string canonical_request;
  std::string string_to_sign;
  std::string authorization;
};

// Names the case in test listings (CTest's test names) instead of dumping its bytes.
void PrintTo(const SigningVector& vector, std::ostream* out) { *out << vector.name; }

// The test suite's requests all go to example.amazonaws.com at 20150830T123600Z.
SigningVector Suite(std::string name, std::string method, std::string canonical_uri,
                    std::vector<std::pair<std::string, std::string>> query, Headers extra_headers,
                    std::string canonical_request, std::string string_to_sign_hash,
                    std::string signed_headers, std::string signature) {
  SigningVector vector;
  vector.name = std::move(name);
  vector.request.method = std::move(method);
  vector.request.canonical_uri = std::move(canonical_uri);
  vector.request.query = std::move(query);
  vector.request.headers = {{"Host", "example.amazonaws.com"}};
  vector.request.headers.insert(vector.request.headers.end(), extra_headers.begin(),
                                extra_headers.end());
  vector.request.payload_sha256_hex = kEmptySha256;
  vector.canonical_request = std::move(canonical_request);
  vector.string_to_sign =
      "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
      string_to_sign_hash;
  vector.authorization =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      "SignedHeaders=" +
      signed_headers + ", Signature=" + signature;
  return vector;
}

std::vector<SigningVector> SuiteVectors() {
  const std::string vanilla_headers =
      "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n";
  std::vector<SigningVector> vectors = {
      Suite("get_vanilla", "GET", "/", {}, {}, "GET\n/\n\n" + vanilla_headers + kEmptySha256,
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63", "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
      Suite("get_vanilla_query_order_key_case", "GET", "/",
            {{"Param2", "value2"}, {"Param1", "value1"}}, {},
            "GET\n/\nParam1=value1&Param2=value2\n" + vanilla_headers + kEmptySha256,
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0", "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
      Suite("get_vanilla_query_order_key", "GET", "/", {{"Param1", "value2"}, {"Param1", "Value1"}},
            {}, "GET\n/\nParam1=Value1&Param1=value2\n" + vanilla_headers + kEmptySha256,
            "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89", "host;x-amz-date",
            "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
      Suite("get_vanilla_query_order_value", "GET", "/",
            {{"Param1", "value2"}, {"Param1", "value1"}}, {},
            "GET\n/\nParam1=value1&Param1=value2\n" + vanilla_headers + kEmptySha256,
            "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606", "host;x-amz-date",
            "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
      Suite("get_vanilla_utf8_query", "GET", "/", {{"\xE1\x88\xB4", "bar"}}, {},
            "GET\n/\n%E1%88%B4=bar\n" + vanilla_headers + kEmptySha256,
            "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073", "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
      Suite("get_vanilla_query_unreserved", "GET", "/", {{kUnreserved, kUnreserved}}, {},
            "GET\n/\n" + std::string(kUnreserved) + "=" + kUnreserved + "\n" + vanilla_headers +
                kEmptySha256,
            "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177", "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
      Suite("get_unreserved", "GET", SigV4UriEncode("/" + std::string(kUnreserved), true), {}, {},
            "GET\n/" + std::string(kUnreserved) + "\n\n" + vanilla_headers + kEmptySha256,
            "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9", "host;x-amz-date",
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
      Suite("get_utf8", "GET", SigV4UriEncode("/\xE1\x88\xB4", true), {}, {},
            "GET\n/%E1%88%B4\n\n" + vanilla_headers + kEmptySha256,
            "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102", "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
      Suite("get_space", "GET", SigV4UriEncode("/example space/", true), {}, {},
            "GET\n/example%20space/\n\n" + vanilla_headers + kEmptySha256,
            "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86", "host;x-amz-date",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
      Suite("get_header_value_trim", "GET", "/", {},
            {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" +
                std::string(kEmptySha256),
            "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
      Suite("get_header_value_order", "GET", "/", {},
            {{"My-Header1", "value4"},
             {"My-Header1", "value1"},
             {"My-Header1", "value3"},
             {"My-Header1", "value2"}},
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                std::string(kEmptySha256),
            "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
            "host;my-header1;x-amz-date",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
      Suite("get_header_key_duplicate", "GET", "/", {},
            {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                std::string(kEmptySha256),
            "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
      Suite("post_vanilla", "POST", "/", {}, {}, "POST\n/\n\n" + vanilla_headers + kEmptySha256,
            "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87", "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
      Suite("post_vanilla_query", "POST", "/", {{"Param1", "value1"}}, {},
            "POST\n/\nParam1=value1\n" + vanilla_headers + kEmptySha256,
            "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd", "host;x-amz-date",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
      Suite("post_header_key_sort", "POST", "/", {}, {{"My-Header1", "value1"}},
            "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                std::string(kEmptySha256),
            "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
            "host;my-header1;x-amz-date",
            "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
      Suite("post_header_value_case", "POST", "/", {}, {{"My-Header1", "VALUE1"}},
            "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\n"
            "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                std::string(kEmptySha256),
            "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
            "host;my-header1;x-amz-date",
            "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
  };

  // The form posts carry the body "Param1=value1".
  const std::string form_sha256 = Sha256Hex("Param1=value1");
  SigningVector form = Suite(
      "post_x_www_form_urlencoded", "POST", "/", {},
      {{"Content-Type", "application/x-www-form-urlencoded"}},
      "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
      "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
      "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
      "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
      "content-type;host;x-amz-date",
      "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
  form.request.payload_sha256_hex = form_sha256;
  vectors.push_back(form);

  SigningVector form_charset = Suite(
      "post_x_www_form_urlencoded_parameters", "POST", "/", {},
      {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}},
      "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\n"
      "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
      "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
      "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
      "content-type;host;x-amz-date",
      "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe");
  form_charset.request.payload_sha256_hex = form_sha256;
  vectors.push_back(form_charset);

  // Temporary credentials: the token is signed (the suite's post-sts-header-before).
  SigningVector token = Suite("post_sts_header_before", "POST", "/", {}, {},
                              "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
                              "x-amz-security-token:" +
                                  std::string(kSessionToken) +
                                  "\n\nhost;x-amz-date;x-amz-security-token\n" + kEmptySha256,
                              "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
                              "host;x-amz-date;x-amz-security-token",
                              "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
  token.session_token = kSessionToken;
  vectors.push_back(token);
  return vectors;
}

// The S3 reference's examples: examplebucket at 20130524T000000Z, their own example key pair.
SigningVector S3Example(std::string name, std::string method, std::string canonical_uri,
                        std::vector<std::pair<std::string, std::string>> query, Headers headers,
                        std::string payload_sha256_hex, std::string canonical_request,
                        std::string string_to_sign_hash, std::string signed_headers,
                        std::string signature) {
  SigningVector vector;
  vector.name = std::move(name);
  vector.request.method = std::move(method);
  vector.request.canonical_uri = std::move(canonical_uri);
  vector.request.query = std::move(query);
  vector.request.headers = std::move(headers);
  vector.request.payload_sha256_hex = std::move(payload_sha256_hex);
  vector.canonical_request = std::move(canonical_request);
  vector.string_to_sign =
      "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
      string_to_sign_hash;
  // The reference prints the header without spaces after the commas; both forms are accepted
  // and the spacing is not part of what is signed.
  vector.authorization =
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      "SignedHeaders=" +
      signed_headers + ", Signature=" + signature;
  return vector;
}

std::vector<SigningVector> S3Vectors() {
  const std::string host = "examplebucket.s3.amazonaws.com";
  const std::string put_sha256 = Sha256Hex("Welcome to Amazon S3.");
  return {
      S3Example("get_object", "GET", "/test.txt", {},
                {{"Host", host}, {"Range", "bytes=0-9"}, {"x-amz-content-sha256", kEmptySha256}},
                kEmptySha256,
                "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                "x-amz-content-sha256:" +
                    std::string(kEmptySha256) +
                    "\nx-amz-date:20130524T000000Z\n\n"
                    "host;range;x-amz-content-sha256;x-amz-date\n" +
                    kEmptySha256,
                "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
      S3Example("put_object", "PUT", SigV4UriEncode("/test$file.text", true), {},
                {{"Host", host},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                 {"x-amz-content-sha256", put_sha256}},
                put_sha256,
                "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:"
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
      S3Example("get_bucket_lifecycle", "GET", "/", {{"lifecycle", ""}},
                {{"Host", host}, {"x-amz-content-sha256", kEmptySha256}}, kEmptySha256,
                "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:" +
                    std::string(kEmptySha256) +
                    "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" +
                    kEmptySha256,
                "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
      S3Example("list_objects", "GET", "/", {{"prefix", "J"}, {"max-keys", "2"}},
                {{"Host", host}, {"x-amz-content-sha256", kEmptySha256}}, kEmptySha256,
                "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:" +
                    std::string(kEmptySha256) +
                    "\nx-amz-date:20130524T000000Z\n\nhost;x-amz-content-sha256;x-amz-date\n" +
                    kEmptySha256,
                "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
  };
}

class SigV4SuiteTest : public testing::TestWithParam<SigningVector> {};

TEST_P(SigV4SuiteTest, MatchesPublishedVector) {
  const SigningVector& vector = GetParam();
  const AwsCredentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                   vector.session_token};
  const auto now = std::chrono::sys_days{std::chrono::year{2015} / August / 30} + 12h + 36min;

  const SigV4Signature signature =
      SignV4(vector.request, credentials, SigV4Scope{"us-east-1", "service"}, now);

  EXPECT_EQ(signature.canonical_request, vector.canonical_request);
  EXPECT_EQ(signature.string_to_sign, vector.string_to_sign);
  EXPECT_EQ(signature.authorization, vector.authorization);
  EXPECT_EQ(signature.amz_date, "20150830T123600Z");
}

INSTANTIATE_TEST_SUITE_P(AwsSigV4TestSuite, SigV4SuiteTest, testing::ValuesIn(SuiteVectors()),
                         [](const auto& info) { return info.param.name; });

class SigV4S3ExampleTest : public testing::TestWithParam<SigningVector> {};

TEST_P(SigV4S3ExampleTest, MatchesPublishedExample) {
  const SigningVector& vector = GetParam();
  const AwsCredentials credentials{"AKIAIOSFODNN7EXAMPLE",
                                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", std::nullopt};
  const auto now = std::chrono::sys_days{std::chrono::year{2013} / May / 24};

  const SigV4Signature signature =
      SignV4(vector.request, credentials, SigV4Scope{"us-east-1", "s3"}, now);

  EXPECT_EQ(signature.canonical_request, vector.canonical_request);
  EXPECT_EQ(signature.string_to_sign, vector.string_to_sign);
  EXPECT_EQ(signature.authorization, vector.authorization);
}

INSTANTIATE_TEST_SUITE_P(AwsS3Examples, SigV4S3ExampleTest, testing::ValuesIn(S3Vectors()),
                         [](const auto& info) { return info.param.name; });

TEST(SigV4Test, AddsDateTokenAndAuthorizationHeaders) {
  SigV4Request request;
  request.method = "GET";
  request.headers = {{"Host", "example.amazonaws.com"}};
  request.payload_sha256_hex = kEmptySha256;
  const auto now = std::chrono::sys_days{std::chrono::year{2015} / August / 30} + 12h + 36min;

  const SigV4Signature plain =
      SignV4(request, {"AKIDEXAMPLE", "secret", std::nullopt}, {"us-east-1", "service"}, now);
  const SigV4Signature with_token =
      SignV4(request, {"AKIDEXAMPLE", "secret", "token"}, {"us-east-1", "service"}, now);

  EXPECT_EQ(plain.headers_to_add,
            (Headers{{"x-amz-date", "20150830T123600Z"}, {"Authorization", plain.authorization}}));
  EXPECT_EQ(with_token.headers_to_add, (Headers{{"x-amz-date", "20150830T123600Z"},
                                                {"x-amz-security-token", "token"},
                                                {"Authorization", with_token.authorization}}));
}

TEST(SigV4Test, UriEncodeKeepsOnlyUnreservedAndOptionallySlash) {
  EXPECT_EQ(SigV4UriEncode("a b/c+d=e&\xC3\xBC~_.-", true), "a%20b/c%2Bd%3De%26%C3%BC~_.-");
  EXPECT_EQ(SigV4UriEncode("a b/c", false), "a%20b%2Fc");
}

// Published digests: FIPS 180-2 (SHA-256 of "abc") and RFC 1321 (MD5 of "" and "abc"; the
// Content-MD5 header carries the 16 bytes in base64, RFC 1864).
TEST(SigV4Test, DigestsMatchPublishedValues) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Md5Base64(Body{}).value(), "1B2M2Y8AsgTpgAmY7PhCfg==");  // d41d8cd9...8427e
  EXPECT_EQ(Md5Base64(Body{std::string("abc")}).value(),
            "kAFQmDzST7DWlj99KOF/cg==");  // 900150983cd24fb0d6963f7d28e17f72
}

class BodyDigestTest : public testing::Test {
 protected:
  void SetUp() override {
    file_ = std::filesystem::temp_directory_path() /
            ("conduit-sigv4-" + std::to_string(::getpid()) + ".bin");
    // Larger than one read chunk, so that slices span several reads.
    for (int i = 0; i < 700 * 1024; ++i) {
      file_bytes_ += static_cast<char>((i * 7 + i / 251) & 0xff);
    }
    std::ofstream(file_, std::ios::binary) << file_bytes_;
  }
  void TearDown() override { std::filesystem::remove(file_); }

  std::filesystem::path file_;
  std::string file_bytes_;
};

TEST_F(BodyDigestTest, StreamsEveryKindOfPieceInOrder) {
  const std::vector<std::uint8_t> borrowed = {0x00, 0xff, 0x10};
  const Body body = {std::string("head"), FileSlice{file_, 3, 600 * 1024},
                     std::span<const std::uint8_t>(borrowed), FileSlice{file_, 0, 0},
                     FileSlice{file_, 1, 5}};
  const std::string flat = "head" + file_bytes_.substr(3, 600 * 1024) +
                           std::string(borrowed.begin(), borrowed.end()) + file_bytes_.substr(1, 5);

  const auto digests = DigestPayload(body);
  ASSERT_TRUE(digests.ok()) << digests.error().detail;
  EXPECT_EQ(digests->sha256_hex, Sha256Hex(flat));
  EXPECT_EQ(digests->md5_base64, Md5Base64(Body{flat}).value());
  EXPECT_EQ(Sha256Hex(body).value(), Sha256Hex(flat));
}

TEST_F(BodyDigestTest, UnreadableFileIsABodyError) {
  const auto missing = Sha256Hex(Body{FileSlice{file_.string() + ".missing", 0, 10}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, HttpFailure::kBody);

  const auto past_end = DigestPayload(Body{FileSlice{file_, file_bytes_.size() - 2, 10}});
  ASSERT_FALSE(past_end.ok());
  EXPECT_EQ(past_end.error().kind, HttpFailure::kBody);
  EXPECT_NE(past_end.error().detail.find("ends before"), std::string::npos);
}

}  // namespace
}  // namespace conduit::http
