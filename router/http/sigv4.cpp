#include "router/http/sigv4.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <span>
#include <type_traits>
#include <variant>

#include "router/io/posix_file.h"

namespace conduit::http {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::size_t kSha256Bytes = 32;
constexpr std::size_t kFileChunkBytes = 256 * 1024;

std::string Hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes.size() * 2);
  for (const unsigned char byte : bytes) {
    text += kDigits[byte >> 4];
    text += kDigits[byte & 0x0f];
  }
  return text;
}

std::string Base64(std::span<const unsigned char> bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3), '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), bytes.data(),
                                     static_cast<int>(bytes.size()));
  text.resize(static_cast<std::size_t>(length));
  return text;
}

using HmacSha256 = std::array<unsigned char, kSha256Bytes>;

HmacSha256 Hmac(std::span<const unsigned char> key, std::string_view data) {
  HmacSha256 mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &length);
  return mac;
}

std::span<const unsigned char> Bytes(std::string_view text) {
  return {reinterpret_cast<const unsigned char*>(text.data()), text.size()};
}

// A running message digest (EVP, OpenSSL 3).
class Digest {
 public:
  explicit Digest(const EVP_MD* algorithm) : context_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(context_.get(), algorithm, nullptr);
  }
  void Update(std::span<const unsigned char> bytes) {
    EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
  }
  std::vector<unsigned char> Final() {
    std::vector<unsigned char> digest(static_cast<std::size_t>(EVP_MAX_MD_SIZE));
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest.data(), &length);
    digest.resize(length);
    return digest;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> context_;
};

HttpError BodyError(std::string detail) { return HttpError{HttpFailure::kBody, std::move(detail)}; }

// Feeds every byte of `slice` to `consume` in chunks.
template <typename Consume>
std::optional<HttpError> ReadSlice(const FileSlice& slice, Consume&& consume) {
  const io::FileDescriptor file(::open(slice.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) {
    return BodyError("cannot open " + slice.file.string() + ": " + std::strerror(errno));
  }
  std::vector<unsigned char> buffer(
      static_cast<std::size_t>(std::min<std::uint64_t>(slice.length, kFileChunkBytes)));
  std::uint64_t done = 0;
  while (done < slice.length) {
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(slice.length - done, buffer.size()));
    const ssize_t got =
        ::pread(file.get(), buffer.data(), want, static_cast<off_t>(slice.offset + done));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      return BodyError("cannot read " + slice.file.string() + ": " + std::strerror(errno));
    }
    if (got == 0) {
      return BodyError(slice.file.string() + " ends before byte " +
                       std::to_string(slice.offset + slice.length));
    }
    consume(std::span<const unsigned char>(buffer.data(), static_cast<std::size_t>(got)));
    done += static_cast<std::uint64_t>(got);
  }
  return std::nullopt;
}

// Feeds every byte of `body`, piece by piece, to each of `digests`.
std::optional<HttpError> DigestBody(const Body& body, std::span<Digest* const> digests) {
  const auto update_all = [&](std::span<const unsigned char> bytes) {
    for (Digest* digest : digests) {
      digest->Update(bytes);
    }
  };
  for (const BodyPiece& piece : body) {
    std::optional<HttpError> error;
    std::visit(
        [&](const auto& part) {
          using Part = std::decay_t<decltype(part)>;
          if constexpr (std::is_same_v<Part, std::string>) {
            update_all(Bytes(part));
          } else if constexpr (std::is_same_v<Part, FileSlice>) {
            error = ReadSlice(part, update_all);
          } else {
            update_all(std::span<const unsigned char>(part.data(), part.size()));
          }
        },
        piece);
    if (error) {
      return error;
    }
  }
  return std::nullopt;
}

// Trims the value and folds each run of spaces into one (SigV4 "Trimall").
std::string CanonicalHeaderValue(std::string_view value) {
  std::string folded;
  bool in_space = false;
  for (const char c : value) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space && !folded.empty()) {
      folded += ' ';
    }
    in_space = false;
    folded += c;
  }
  return folded;
}

// ASCII only, whatever the locale: header names are tokens.
std::string LowerCase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return lower;
}

// yyyymmddThhmmssZ, in UTC.
std::string AmzDate(std::chrono::system_clock::time_point now) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[sizeof "20150830T123600Z"];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

}  // namespace

std::string SigV4UriEncode(std::string_view text, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '_' ||
                            byte == '.' || byte == '~';
    if (unreserved || (keep_slash && byte == '/')) {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kDigits[byte >> 4];
      encoded += kDigits[byte & 0x0f];
    }
  }
  return encoded;
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(SigV4UriEncode(name, false), SigV4UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string text;
  for (const auto& [name, value] : encoded) {
    if (!text.empty()) {
      text += '&';
    }
    text += name + '=' + value;
  }
  return text;
}

SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      const SigV4Scope& scope, std::chrono::system_clock::time_point now) {
  SigV4Signature signature;
  signature.amz_date = AmzDate(now);
  const std::string date = signature.amz_date.substr(0, 8);
  signature.headers_to_add.emplace_back("x-amz-date", signature.amz_date);
  if (credentials.session_token) {
    signature.headers_to_add.emplace_back("x-amz-security-token", *credentials.session_token);
  }

  // Sorted by lower-case name; the values of a repeated name joined with ',' in order.
  std::map<std::string, std::string> canonical_headers;
  const auto add_header = [&](std::string_view name, std::string_view value) {
    std::string& joined = canonical_headers[LowerCase(name)];
    if (!joined.empty()) {
      joined += ',';
    }
    joined += CanonicalHeaderValue(value);
  };
  for (const auto& [name, value] : request.headers) {
    add_header(name, value);
  }
  for (const auto& [name, value] : signature.headers_to_add) {
    add_header(name, value);
  }
  std::string header_lines;
  std::string signed_headers;
  for (const auto& [name, value] : canonical_headers) {
    header_lines += name + ':' + value + '\n';
    if (!signed_headers.empty()) {
      signed_headers += ';';
    }
    signed_headers += name;
  }

  signature.canonical_request = request.method + '\n' + request.canonical_uri + '\n' +
                                CanonicalQueryString(request.query) + '\n' + header_lines + '\n' +
                                signed_headers + '\n' + request.payload_sha256_hex;

  const std::string credential_scope =
      date + '/' + scope.region + '/' + scope.service + "/aws4_request";
  signature.string_to_sign = std::string(kAlgorithm) + '\n' + signature.amz_date + '\n' +
                             credential_scope + '\n' + Sha256Hex(signature.canonical_request);

  const HmacSha256 date_key = Hmac(Bytes("AWS4" + credentials.secret_access_key), date);
  const HmacSha256 region_key = Hmac(date_key, scope.region);
  const HmacSha256 service_key = Hmac(region_key, scope.service);
  const HmacSha256 signing_key = Hmac(service_key, "aws4_request");
  const std::string signature_hex = Hex(Hmac(signing_key, signature.string_to_sign));

  signature.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id +
                            '/' + credential_scope + ", SignedHeaders=" + signed_headers +
                            ", Signature=" + signature_hex;
  signature.headers_to_add.emplace_back("Authorization", signature.authorization);
  return signature;
}

std::string Sha256Hex(std::string_view bytes) {
  Digest sha256(EVP_sha256());
  sha256.Update(Bytes(bytes));
  return Hex(sha256.Final());
}

Result<std::string, HttpError> Sha256Hex(const Body& body) {
  Digest sha256(EVP_sha256());
  Digest* const digests[] = {&sha256};
  if (auto error = DigestBody(body, digests)) {
    return *std::move(error);
  }
  return Hex(sha256.Final());
}

Result<std::string, HttpError> Md5Base64(const Body& body) {
  Digest md5(EVP_md5());
  Digest* const digests[] = {&md5};
  if (auto error = DigestBody(body, digests)) {
    return *std::move(error);
  }
  return Base64(md5.Final());
}

Result<PayloadDigests, HttpError> DigestPayload(const Body& body) {
  Digest sha256(EVP_sha256());
  Digest md5(EVP_md5());
  Digest* const digests[] = {&sha256, &md5};
  if (auto error = DigestBody(body, digests)) {
    return *std::move(error);
  }
  return PayloadDigests{Hex(sha256.Final()), Base64(md5.Final())};
}

}  // namespace conduit::http
