#include "router/forward/object_key.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "router/spool/header_reader.h"
#include "rules/attribute_path_parser.h"

namespace conduit::forward {
namespace {

constexpr std::string_view kUnknownValue = "unknown";
constexpr std::size_t kMaxKeyValueLength = 128;
constexpr rules::Tag kSopInstanceUidTag{0x0008, 0x0018};
constexpr rules::Tag kSopClassUidTag{0x0008, 0x0016};
constexpr rules::Tag kStudyInstanceUidTag{0x0020, 0x000D};
constexpr rules::Tag kSeriesInstanceUidTag{0x0020, 0x000E};

// The queue's UIDs first; the header only for other attributes, read once when first needed.
class QueuedInstanceAttributes : public rules::AttributeSource {
 public:
  explicit QueuedInstanceAttributes(const QueuedInstance& item) : item_(item) {}

  std::optional<rules::AttributeValues> Find(const rules::AttributePath& path) const override {
    if (path.steps.size() == 1) {
      const rules::Tag tag = path.steps.front().tag;
      if (tag == kSopClassUidTag) return Uid(item_.sop_class_uid);
      if (tag == kStudyInstanceUidTag) return Uid(item_.study_instance_uid);
      if (tag == kSeriesInstanceUidTag) return Uid(item_.series_instance_uid);
    }
    if (!header_read_) {
      header_read_ = true;
      auto header = spool::InstanceHeader::Read(item_.file);
      if (header) header_ = std::move(header.value());
    }
    if (!header_) return std::nullopt;
    return header_->attributes().Find(path);
  }

 private:
  static rules::AttributeValues Uid(const std::string& uid) { return {"UI", {uid}}; }

  const QueuedInstance& item_;
  mutable bool header_read_ = false;
  mutable std::unique_ptr<spool::InstanceHeader> header_;
};

bool IsSafeKeyCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// A literal part of the template may hold '/' (levels) but no segment that climbs out of the
// destination or is empty.
std::optional<std::string> LiteralProblem(std::string_view text, bool at_start) {
  if (at_start && text.starts_with('/')) return "a key template must not start with '/'";
  if (text.find("//") != std::string_view::npos) {
    return "a key template must not contain empty levels ('//')";
  }
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('/', start), text.size());
    const std::string_view segment = text.substr(start, end - start);
    if (segment == ".." || segment == ".") {
      return "a key template must not contain '.' or '..' levels";
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::string ObjectKeyFor(const KeyTemplate& key_template, const QueuedInstance& item,
                         const std::string& sop_instance_uid) {
  const QueuedInstanceAttributes attributes(item);
  return key_template.Expand(attributes, sop_instance_uid);
}

std::string SafeKeyValue(std::string_view value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.remove_suffix(1);
  if (value.empty()) return std::string(kUnknownValue);
  // File names and S3 key segments have length limits; a UID (64) always fits whole.
  if (value.size() > kMaxKeyValueLength) value = value.substr(0, kMaxKeyValueLength);
  std::string safe;
  safe.reserve(value.size());
  for (const char c : value) safe.push_back(IsSafeKeyCharacter(c) ? c : '_');
  if (safe == ".") return "_";
  if (safe == "..") return "__";
  return safe;
}

Result<KeyTemplate, std::string> KeyTemplate::Parse(std::string_view text) {
  if (text.empty()) return std::string("a key template must not be empty");
  KeyTemplate parsed;
  std::size_t position = 0;
  while (position < text.size()) {
    const std::size_t open = text.find('{', position);
    const std::string_view literal = text.substr(position, open - position);
    if (literal.find('}') != std::string_view::npos) {
      return "unmatched '}' in key template " + std::string(text);
    }
    if (!literal.empty()) {
      if (auto problem = LiteralProblem(literal, position == 0)) return *problem;
      parsed.pieces_.emplace_back(std::string(literal));
    }
    if (open == std::string_view::npos) break;
    const std::size_t close = text.find('}', open);
    if (close == std::string_view::npos) {
      return "unclosed '{' in key template " + std::string(text);
    }
    const std::string_view name = text.substr(open + 1, close - open - 1);
    auto path = rules::ParseAttributePath(name, "");
    if (const auto* problem = std::get_if<std::string>(&path)) {
      return "key template placeholder {" + std::string(name) + "}: " + *problem;
    }
    Placeholder placeholder{std::get<rules::ParsedAttributePath>(path).path, false};
    placeholder.is_sop_instance_uid = placeholder.path.steps.size() == 1 &&
                                      placeholder.path.steps.front().tag == kSopInstanceUidTag;
    parsed.pieces_.emplace_back(std::move(placeholder));
    position = close + 1;
  }
  if (text.back() == '/') return std::string("a key template must not end with '/'");
  return parsed;
}

std::string KeyTemplate::Expand(const rules::AttributeSource& attributes,
                                const std::string& sop_instance_uid) const {
  std::string key;
  for (const auto& piece : pieces_) {
    if (const auto* literal = std::get_if<std::string>(&piece)) {
      key += *literal;
      continue;
    }
    const Placeholder& placeholder = std::get<Placeholder>(piece);
    if (placeholder.is_sop_instance_uid) {
      key += SafeKeyValue(sop_instance_uid);
      continue;
    }
    const std::optional<rules::AttributeValues> found = attributes.Find(placeholder.path);
    // Several values (VM > 1) are kept together, as DICOM writes them (the '\' becomes '_').
    std::string value;
    if (found) {
      for (std::size_t i = 0; i < found->values.size(); ++i) {
        if (i) value += '\\';
        value += found->values[i];
      }
    }
    key += SafeKeyValue(value);
  }
  return key;
}

}  // namespace conduit::forward
