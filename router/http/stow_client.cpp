#include "router/http/stow_client.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <locale>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string_view>

namespace conduit::http {
namespace {

using nlohmann::json;

// PS3.18 10.5.3, Table 10.5.3-1 (the Store Instances Response Module).
constexpr std::string_view kReferencedSopSequence = "00081199";
constexpr std::string_view kFailedSopSequence = "00081198";
constexpr std::string_view kOtherFailuresSequence = "0008119A";
constexpr std::string_view kReferencedSopInstanceUid = "00081155";
constexpr std::string_view kFailureReason = "00081197";

// How much of an error answer's body goes into the one-line detail.
constexpr std::size_t kDetailExcerptBytes = 200;

std::string_view TrimWhitespace(std::string_view text) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
  };
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

bool ContainsIgnoringCase(std::string_view text, std::string_view part) {
  return std::search(text.begin(), text.end(), part.begin(), part.end(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         }) != text.end();
}

// A FailureReason is an unsigned short (VR US); anything else is not one.
std::optional<int> ParseFailureReason(std::string_view text) {
  text = TrimWhitespace(text);
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > 0xFFFF) {
    return std::nullopt;
  }
  return value;
}

// PS3.4 Table B.2-1 (C-STORE statuses, which STOW-RS reuses) and PS3.18 Table 10.5.3-2.
std::string_view FailureReasonMeaning(int reason) {
  switch (reason) {
    case 0x0110:
      return "processing failure";
    case 0x0111:
      return "duplicate SOP instance";
    case 0x0119:
      return "SOP class and instance conflict";
    case 0x0122:
      return "SOP class not supported";
    case 0x0124:
      return "not authorized";
    case 0x0213:
      return "resource limitation";
    case 0xC122:
      return "transfer syntax not supported";
    default:
      break;
  }
  switch (reason & 0xFF00) {
    case 0xA700:
      return "out of resources";
    case 0xA900:
      return "data set does not match SOP class";
    default:
      break;
  }
  if ((reason & 0xF000) == 0xC000) {
    return "cannot understand";
  }
  return {};
}

std::string DescribeFailureReason(std::optional<int> reason) {
  if (!reason) {
    return "no FailureReason given";
  }
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%04X", static_cast<unsigned>(*reason));
  std::string text = std::string("FailureReason ") + hex;
  if (const std::string_view meaning = FailureReasonMeaning(*reason); !meaning.empty()) {
    text += " (" + std::string(meaning) + ")";
  }
  return text;
}

// What an answer body says, whatever its encoding.
struct StowAnswer {
  struct Item {
    std::string sop_instance_uid;  // empty when the item names none
    std::optional<int> failure_reason;
  };
  std::vector<Item> referenced;      // stored
  std::vector<Item> failed;          // not stored, each with its reason
  std::vector<Item> other_failures;  // failures, often tied to no instance of ours
};

std::vector<StowAnswer::Item>* SequenceFor(StowAnswer& answer, std::string_view tag) {
  if (EqualsIgnoringCase(tag, kReferencedSopSequence)) {
    return &answer.referenced;
  }
  if (EqualsIgnoringCase(tag, kFailedSopSequence)) {
    return &answer.failed;
  }
  if (EqualsIgnoringCase(tag, kOtherFailuresSequence)) {
    return &answer.other_failures;
  }
  return nullptr;
}

// ---- application/dicom+json (PS3.18 Annex F): {"00081198": {"vr": "SQ", "Value": [{...}]}}

// The first element of an attribute's "Value" array, or null. Tags are matched ignoring case:
// F.2.1.1 wants upper case, not every server writes it.
const json* FirstJsonValue(const json& dataset, std::string_view tag) {
  for (const auto& [key, attribute] : dataset.items()) {
    if (!EqualsIgnoringCase(key, tag) || !attribute.is_object()) {
      continue;
    }
    const auto value = attribute.find("Value");
    if (value == attribute.end() || !value->is_array() || value->empty()) {
      return nullptr;
    }
    return &value->front();
  }
  return nullptr;
}

std::optional<StowAnswer> ParseJsonAnswer(const std::string& body) {
  // No exceptions: a body that is not JSON is a value, not an error path.
  const json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  // A dataset, or (some servers) an array holding one.
  const json* dataset = &document;
  if (document.is_array() && !document.empty()) {
    dataset = &document.front();
  }
  if (!dataset->is_object()) {
    return std::nullopt;
  }
  StowAnswer answer;
  for (const auto& [tag, attribute] : dataset->items()) {
    std::vector<StowAnswer::Item>* sequence = SequenceFor(answer, tag);
    if (sequence == nullptr || !attribute.is_object()) {
      continue;
    }
    const auto items = attribute.find("Value");
    if (items == attribute.end() || !items->is_array()) {
      continue;
    }
    for (const json& entry : *items) {
      if (!entry.is_object()) {
        continue;
      }
      StowAnswer::Item item;
      if (const json* uid = FirstJsonValue(entry, kReferencedSopInstanceUid);
          uid != nullptr && uid->is_string()) {
        item.sop_instance_uid = TrimWhitespace(uid->get_ref<const std::string&>());
      }
      if (const json* reason = FirstJsonValue(entry, kFailureReason); reason != nullptr) {
        if (reason->is_number_integer()) {
          item.failure_reason = ParseFailureReason(std::to_string(reason->get<long long>()));
        } else if (reason->is_string()) {
          item.failure_reason = ParseFailureReason(reason->get_ref<const std::string&>());
        }
      }
      sequence->push_back(std::move(item));
    }
  }
  return answer;
}

// ---- application/dicom+xml (PS3.19 A.1, the Native DICOM Model):
// <DicomAttribute tag="00081198" vr="SQ"><Item number="1">
//   <DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3</Value></DicomAttribute>
// A tolerant scan for just these elements: no XML library is linked for this one use.

std::string_view XmlAttribute(std::string_view element, std::string_view name) {
  std::size_t at = 0;
  while ((at = element.find(name, at)) != std::string_view::npos) {
    std::size_t cursor = at + name.size();
    const bool starts_word = at > 0 && (element[at - 1] == ' ' || element[at - 1] == '\t' ||
                                        element[at - 1] == '\n' || element[at - 1] == '\r');
    while (cursor < element.size() && element[cursor] == ' ') {
      ++cursor;
    }
    if (starts_word && cursor + 1 < element.size() && element[cursor] == '=') {
      ++cursor;
      while (cursor < element.size() && element[cursor] == ' ') {
        ++cursor;
      }
      const char quote = element[cursor];
      const std::size_t end = element.find(quote, cursor + 1);
      if ((quote == '"' || quote == '\'') && end != std::string_view::npos) {
        return element.substr(cursor + 1, end - cursor - 1);
      }
    }
    at = cursor;
  }
  return {};
}

std::optional<StowAnswer> ParseXmlAnswer(std::string_view body) {
  StowAnswer answer;
  bool is_native_model = false;
  std::vector<std::string_view> open_attributes;  // tags of the enclosing DicomAttributes
  std::optional<StowAnswer::Item> item;           // an item of a top-level sequence
  std::size_t position = 0;
  while ((position = body.find('<', position)) != std::string_view::npos) {
    if (body.substr(position).starts_with("<!--")) {
      const std::size_t comment_end = body.find("-->", position);
      position = comment_end == std::string_view::npos ? body.size() : comment_end + 3;
      continue;
    }
    const std::size_t element_end = body.find('>', position);
    if (element_end == std::string_view::npos) {
      break;
    }
    std::string_view element = body.substr(position + 1, element_end - position - 1);
    position = element_end + 1;
    const bool closing = element.starts_with('/');
    const bool self_closing = element.ends_with('/');
    if (closing) {
      element.remove_prefix(1);
    }
    const std::string_view name = element.substr(0, element.find_first_of(" \t\r\n/"));

    if (name == "NativeDicomModel") {
      is_native_model = true;
    } else if (name == "DicomAttribute" && closing) {
      if (!open_attributes.empty()) {
        open_attributes.pop_back();
      }
    } else if (name == "DicomAttribute" && !self_closing) {
      open_attributes.push_back(XmlAttribute(element, "tag"));
    } else if (name == "Item" && open_attributes.size() == 1) {
      if (!closing && !self_closing) {
        item.emplace();
      } else if (closing && item) {
        if (auto* sequence = SequenceFor(answer, open_attributes.front())) {
          sequence->push_back(std::move(*item));
        }
        item.reset();
      }
    } else if (name == "Value" && !closing && !self_closing && item &&
               open_attributes.size() == 2) {
      const std::size_t text_end = std::min(body.find('<', position), body.size());
      const std::string_view text = TrimWhitespace(body.substr(position, text_end - position));
      if (EqualsIgnoringCase(open_attributes[1], kReferencedSopInstanceUid)) {
        item->sop_instance_uid = text;
      } else if (EqualsIgnoringCase(open_attributes[1], kFailureReason)) {
        item->failure_reason = ParseFailureReason(text);
      }
    }
  }
  if (!is_native_model) {
    return std::nullopt;
  }
  return answer;
}

std::optional<StowAnswer> ParseAnswer(const std::string& content_type, const std::string& body) {
  if (ContainsIgnoringCase(content_type, "xml")) {
    return ParseXmlAnswer(body);
  }
  if (ContainsIgnoringCase(content_type, "json")) {
    return ParseJsonAnswer(body);
  }
  // No usable Content-Type: guess from the first character.
  const std::string_view text = TrimWhitespace(body);
  if (text.starts_with('<')) {
    return ParseXmlAnswer(text);
  }
  if (text.starts_with('{') || text.starts_with('[')) {
    return ParseJsonAnswer(body);
  }
  return std::nullopt;
}

// ---- the request

// A boundary must not occur in any part (RFC 2046 5.1.1); 128 random bits make that as good as
// impossible without scanning the parts, which are streamed from disk.
std::string NewBoundary() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string boundary = "conduit-";
  for (int word = 0; word < 2; ++word) {
    std::uint64_t bits = generator();
    for (int digit = 0; digit < 16; ++digit, bits >>= 4) {
      boundary.push_back(kHex[bits & 0xF]);
    }
  }
  return boundary;
}

// PS3.18 8.6.1.2 / RFC 2046 5.1: the boundary strings interleaved with the instances' own
// pieces. Owned strings are borrowed as spans rather than copied: `instances` outlives the
// synchronous request.
Body MultipartBody(const std::vector<StowInstance>& instances, const std::string& boundary) {
  // RFC 2046 5.1.1: the CRLF before "--boundary" belongs to the delimiter, so the first one,
  // with no part before it, goes without.
  const std::string delimiter = "\r\n--" + boundary;
  const std::string part_start = delimiter + "\r\nContent-Type: application/dicom\r\n\r\n";
  Body body;
  for (const StowInstance& instance : instances) {
    body.emplace_back(body.empty() ? part_start.substr(2) : part_start);
    for (const BodyPiece& piece : instance.part10) {
      if (const auto* text = std::get_if<std::string>(&piece)) {
        body.emplace_back(std::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(text->data()), text->size()));
      } else {
        body.push_back(piece);
      }
    }
  }
  body.emplace_back((body.empty() ? delimiter.substr(2) : delimiter) + "--\r\n");
  return body;
}

std::string Base64(std::string_view bytes) {
  std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  encoded.resize(static_cast<std::size_t>(length));
  return encoded;
}

void AddAuthorization(Headers& headers, const StowAuth& auth) {
  switch (auth.kind) {
    case StowAuth::Kind::kNone:
      return;
    case StowAuth::Kind::kBasic:
      headers.emplace_back("Authorization", "Basic " + Base64(auth.username + ":" + auth.password));
      return;
    case StowAuth::Kind::kBearer:
      // Token files usually end with a newline, which must not reach the header.
      headers.emplace_back("Authorization", "Bearer " + std::string(TrimWhitespace(auth.token)));
      return;
  }
}

// RFC 9110 10.2.3: delay-seconds, or an HTTP-date (IMF-fixdate) to wait until.
std::optional<std::chrono::seconds> ParseRetryAfter(const std::optional<std::string>& header) {
  if (!header) {
    return std::nullopt;
  }
  const std::string_view text = TrimWhitespace(*header);
  std::int64_t seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error == std::errc() && end == text.data() + text.size() && seconds >= 0) {
    return std::chrono::seconds(seconds);
  }
  std::tm date{};
  std::istringstream stream{std::string(text)};
  stream.imbue(std::locale::classic());
  stream >> std::get_time(&date, "%a, %d %b %Y %H:%M:%S GMT");
  if (stream.fail()) {
    return std::nullopt;
  }
  const auto until = std::chrono::system_clock::from_time_t(timegm(&date));
  const auto wait =
      std::chrono::duration_cast<std::chrono::seconds>(until - std::chrono::system_clock::now());
  return std::max(wait, std::chrono::seconds(0));
}

// The start of a body as one printable line, for logs.
std::string Excerpt(std::string_view body) {
  std::string line;
  for (const char c : TrimWhitespace(body.substr(0, kDetailExcerptBytes))) {
    // Control characters become spaces, and runs of spaces one (pretty-printed JSON, HTML).
    const char printable = static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
    if (printable != ' ' || (!line.empty() && line.back() != ' ')) {
      line.push_back(printable);
    }
  }
  return body.size() > kDetailExcerptBytes ? line + "..." : line;
}

// The outcome of each requested instance from the status and what the answer body said, if it
// could be read.
std::vector<StowInstanceResult> InstanceResults(long http_status,
                                                const std::optional<StowAnswer>& answer,
                                                const std::vector<std::string>& requested) {
  // PS3.18 10.5.3: 200 means everything was stored; otherwise only what the answer lists in
  // ReferencedSOPSequence was.
  const bool all_stored = http_status == 200;
  std::vector<StowInstanceResult> results;
  results.reserve(requested.size());
  for (const std::string& uid : requested) {
    StowInstanceResult result;
    result.sop_instance_uid = uid;
    result.stored = all_stored;
    if (!all_stored) {
      result.detail =
          "not listed as stored in the answer (HTTP " + std::to_string(http_status) + ")";
    }
    results.push_back(std::move(result));
  }
  if (!answer) {
    return results;
  }

  std::vector<bool> mentioned(results.size(), false);
  const auto apply = [&](const StowAnswer::Item& item, bool stored) {
    bool found = false;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].sop_instance_uid != item.sop_instance_uid) {
        continue;
      }
      found = true;
      mentioned[i] = true;
      results[i].stored = stored;
      results[i].failure_reason = stored ? std::nullopt : item.failure_reason;
      results[i].detail = stored ? std::string() : DescribeFailureReason(item.failure_reason);
    }
    return found;
  };
  for (const StowAnswer::Item& item : answer->referenced) {
    apply(item, true);
  }
  // After the stored ones: an instance listed as both stored and failed counts as failed.
  for (const StowAnswer::Item& item : answer->failed) {
    apply(item, false);
  }
  // Other failures usually name no instance of ours; their reasons explain the unlisted ones.
  std::string other_reasons;
  for (const StowAnswer::Item& item : answer->other_failures) {
    if (!apply(item, false) && item.failure_reason) {
      other_reasons +=
          (other_reasons.empty() ? "" : ", ") + DescribeFailureReason(item.failure_reason);
    }
  }
  if (!other_reasons.empty()) {
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!mentioned[i] && !results[i].stored) {
        results[i].detail += "; other failures: " + other_reasons;
      }
    }
  }
  return results;
}

}  // namespace

std::vector<StowInstanceResult> ParseStowResponse(long http_status, const std::string& content_type,
                                                  const std::string& body,
                                                  const std::vector<std::string>& requested) {
  return InstanceResults(http_status, ParseAnswer(content_type, body), requested);
}

StowClient::StowClient(HttpClient& http, std::string base_url)
    : http_(http), base_url_(std::move(base_url)) {
  while (base_url_.ends_with('/')) {
    base_url_.pop_back();
  }
}

Result<StowResponse, HttpError> StowClient::Store(const std::vector<StowInstance>& instances,
                                                  const StowAuth& auth,
                                                  const std::string& study_instance_uid) {
  const std::string boundary = NewBoundary();
  HttpRequest request;
  request.method = "POST";
  request.url = base_url_ + "/studies";
  if (!study_instance_uid.empty()) {
    request.url += "/" + PercentEncode(study_instance_uid);
  }
  request.headers = {
      {"Content-Type", "multipart/related; type=\"application/dicom\"; boundary=" + boundary},
      {"Accept", "application/dicom+json"}};
  AddAuthorization(request.headers, auth);
  request.body = MultipartBody(instances, boundary);

  auto answer = http_.Perform(request);
  if (!answer) {
    return answer.error();
  }
  std::vector<std::string> requested;
  requested.reserve(instances.size());
  for (const StowInstance& instance : instances) {
    requested.push_back(instance.sop_instance_uid);
  }
  StowResponse response;
  response.http_status = answer->status;
  response.retry_after = ParseRetryAfter(answer->Header("retry-after"));
  const std::optional<StowAnswer> parsed =
      ParseAnswer(answer->Header("content-type").value_or(""), answer->body);
  response.instances = InstanceResults(answer->status, parsed, requested);

  const auto stored = std::count_if(response.instances.begin(), response.instances.end(),
                                    [](const StowInstanceResult& result) { return result.stored; });
  response.detail = "HTTP " + std::to_string(answer->status) + ": " + std::to_string(stored) +
                    " of " + std::to_string(instances.size()) + " stored";
  const auto explained = std::find_if(
      response.instances.begin(), response.instances.end(),
      [](const StowInstanceResult& result) { return result.failure_reason.has_value(); });
  if (explained != response.instances.end()) {
    response.detail += "; first failure " + explained->sop_instance_uid + ": " + explained->detail;
  } else if (!parsed && answer->status >= 300 && !answer->body.empty()) {
    // Not a STOW-RS answer (an error page, a proxy's message): its start says what went wrong.
    response.detail += "; server said: " + Excerpt(answer->body);
  }
  return response;
}

Result<long, HttpError> StowClient::Probe(const StowAuth& auth) {
  HttpRequest request;
  request.url = base_url_ + "/studies?limit=1";
  request.headers = {{"Accept", "application/dicom+json"}};
  AddAuthorization(request.headers, auth);
  auto answer = http_.Perform(request);
  if (!answer) {
    return answer.error();
  }
  return answer->status;
}

}  // namespace conduit::http
