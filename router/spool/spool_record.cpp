#include "router/spool/spool_record.h"

#include <charconv>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace conduit::spool {
namespace {

// Every line is key=value; the first names the format version so it can evolve.
constexpr std::string_view kVersionLine = "conduit_spool_record=1";

std::string Sanitize(std::string_view value) {
  std::string clean(value);
  for (char& c : clean) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return clean;
}

void PutLine(std::string& out, std::string_view key, std::string_view value) {
  out.append(key).append("=").append(Sanitize(value)).append("\n");
}

// RFC 3339 in UTC with microseconds: "2026-11-30T01:50:37.123456Z".
std::string FormatTime(std::chrono::system_clock::time_point time) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1000000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof text - length, ".%06lldZ",
                static_cast<long long>(micros % 1000000));
  return text;
}

std::optional<std::chrono::system_clock::time_point> ParseTime(std::string_view text) {
  std::tm utc{};
  const std::string value(text);
  const char* rest = ::strptime(value.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  long long micros = 0;
  int consumed = 0;
  if (rest == nullptr || std::sscanf(rest, ".%6lldZ%n", &micros, &consumed) != 1 ||
      rest[consumed] != '\0') {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(::timegm(&utc)) + std::chrono::microseconds(micros);
}

// Route and edit lines hold several fields separated by '|'; each field is percent-encoded so
// that names, values and regexes from the rules file survive any character.
std::string EncodeField(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F || c == '%' || c == '|') {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 0xF]);
    } else {
      encoded.push_back(c);
    }
  }
  return encoded;
}

std::optional<std::string> DecodeField(std::string_view field) {
  std::string decoded;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '%') {
      decoded.push_back(field[i]);
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= field.size()) return std::nullopt;
    const auto [end, error] =
        std::from_chars(field.data() + i + 1, field.data() + i + 3, value, 16);
    if (error != std::errc() || end != field.data() + i + 3) return std::nullopt;
    decoded.push_back(static_cast<char>(value));
    i += 2;
  }
  return decoded;
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  for (;;) {
    const auto bar = line.find('|');
    fields.push_back(line.substr(0, bar));
    if (bar == std::string_view::npos) return fields;
    line.remove_prefix(bar + 1);
  }
}

constexpr std::string_view kLevelNames[] = {"instance", "series", "study"};
constexpr std::string_view kEditKindNames[] = {"set",    "delete", "prefix",
                                               "suffix", "copy",   "replace"};

template <std::size_t N>
std::optional<std::size_t> IndexOf(const std::string_view (&names)[N], std::string_view name) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return i;
  }
  return std::nullopt;
}

template <typename Integer>
bool ParseInteger(std::string_view text, Integer& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string SerializeSpoolRecord(const SpoolRecord& record) {
  std::string out(kVersionLine);
  out.push_back('\n');
  PutLine(out, "spool_id", record.spool_id);
  PutLine(out, "association_id", std::to_string(record.association_id));
  PutLine(out, "calling_ae", record.facts.calling_ae);
  PutLine(out, "called_ae", record.facts.called_ae);
  PutLine(out, "peer_address", record.facts.peer_address);
  PutLine(out, "peer_port", std::to_string(record.facts.peer_port));
  PutLine(out, "received_at", FormatTime(record.facts.received_at));
  PutLine(out, "sop_class_uid", record.sop_class_uid);
  PutLine(out, "sop_instance_uid", record.sop_instance_uid);
  PutLine(out, "transfer_syntax_uid", record.transfer_syntax_uid);
  PutLine(out, "study_instance_uid", record.study_instance_uid);
  PutLine(out, "series_instance_uid", record.series_instance_uid);
  PutLine(out, "modality", record.modality);
  PutLine(out, "dataset_bytes", std::to_string(record.dataset_bytes));
  PutLine(out, "rules_generation", std::to_string(record.rules_generation));
  for (std::size_t index = 0; index < record.routes.size(); ++index) {
    const rules::Route& route = record.routes[index];
    out.append("route=")
        .append(EncodeField(route.destination))
        .append("|")
        .append(std::to_string(route.priority))
        .append("|")
        .append(EncodeField(route.transcode_profile))
        .append("|")
        .append(kLevelNames[static_cast<int>(route.level)])
        .append("|")
        .append(std::to_string(route.quiet_period.count()))
        .append("|")
        .append(EncodeField(route.rule))
        .append("\n");
    for (const rules::TagEdit& edit : route.edits) {
      out.append("edit=")
          .append(std::to_string(index))
          .append("|")
          .append(kEditKindNames[static_cast<int>(edit.kind)])
          .append("|")
          .append(EncodeField(edit.target_text))
          .append("|")
          .append(EncodeField(edit.value))
          .append("|")
          .append(EncodeField(edit.source_text))
          .append("|")
          .append(EncodeField(edit.pattern))
          .append("|")
          .append(EncodeField(edit.replacement))
          .append("\n");
    }
  }
  return out;
}

namespace {

bool ParseRouteLine(std::string_view value, SpoolRecord& record) {
  const auto fields = SplitFields(value);
  if (fields.size() != 6) return false;
  rules::Route route;
  auto destination = DecodeField(fields[0]);
  auto transcode = DecodeField(fields[2]);
  auto rule = DecodeField(fields[5]);
  auto level = IndexOf(kLevelNames, fields[3]);
  std::int64_t quiet = 0;
  if (!destination || !transcode || !rule || !level || !ParseInteger(fields[1], route.priority) ||
      !ParseInteger(fields[4], quiet)) {
    return false;
  }
  route.destination = std::move(*destination);
  route.transcode_profile = std::move(*transcode);
  route.rule = std::move(*rule);
  route.level = static_cast<rules::RoutingLevel>(*level);
  route.quiet_period = std::chrono::seconds(quiet);
  record.routes.push_back(std::move(route));
  return true;
}

bool ParseEditLine(std::string_view value, SpoolRecord& record) {
  const auto fields = SplitFields(value);
  std::size_t route_index = 0;
  if (fields.size() != 7 || !ParseInteger(fields[0], route_index) ||
      route_index >= record.routes.size()) {
    return false;
  }
  const auto kind = IndexOf(kEditKindNames, fields[1]);
  auto target = DecodeField(fields[2]);
  auto edit_value = DecodeField(fields[3]);
  auto source = DecodeField(fields[4]);
  auto pattern = DecodeField(fields[5]);
  auto replacement = DecodeField(fields[6]);
  if (!kind || !target || !edit_value || !source || !pattern || !replacement) return false;
  rules::TagEdit edit;
  edit.kind = static_cast<rules::TagEdit::Kind>(*kind);
  edit.target_text = std::move(*target);
  edit.value = std::move(*edit_value);
  edit.source_text = std::move(*source);
  edit.pattern = std::move(*pattern);
  edit.replacement = std::move(*replacement);
  record.routes[route_index].edits.push_back(std::move(edit));
  return true;
}

}  // namespace

std::optional<SpoolRecord> ParseSpoolRecord(std::string_view text) {
  // The slot is NUL-padded; the record ends at the first NUL.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
  if (!text.starts_with(kVersionLine) || text.size() <= kVersionLine.size() ||
      text[kVersionLine.size()] != '\n') {
    return std::nullopt;
  }
  text.remove_prefix(kVersionLine.size() + 1);
  SpoolRecord record;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    const std::string_view key = line.substr(0, equals);
    const std::string_view value = line.substr(equals + 1);
    bool ok = true;
    if (key == "spool_id") {
      record.spool_id = value;
    } else if (key == "association_id") {
      ok = ParseInteger(value, record.association_id);
    } else if (key == "calling_ae") {
      record.facts.calling_ae = value;
    } else if (key == "called_ae") {
      record.facts.called_ae = value;
    } else if (key == "peer_address") {
      record.facts.peer_address = value;
    } else if (key == "peer_port") {
      ok = ParseInteger(value, record.facts.peer_port);
    } else if (key == "received_at") {
      const auto time = ParseTime(value);
      ok = time.has_value();
      if (ok) record.facts.received_at = *time;
    } else if (key == "sop_class_uid") {
      record.sop_class_uid = value;
    } else if (key == "sop_instance_uid") {
      record.sop_instance_uid = value;
    } else if (key == "transfer_syntax_uid") {
      record.transfer_syntax_uid = value;
    } else if (key == "study_instance_uid") {
      record.study_instance_uid = value;
    } else if (key == "series_instance_uid") {
      record.series_instance_uid = value;
    } else if (key == "modality") {
      record.modality = value;
    } else if (key == "dataset_bytes") {
      ok = ParseInteger(value, record.dataset_bytes);
    } else if (key == "rules_generation") {
      ok = ParseInteger(value, record.rules_generation);
    } else if (key == "route") {
      ok = ParseRouteLine(value, record);
    } else if (key == "edit") {
      ok = ParseEditLine(value, record);
    }
    // Unknown keys come from newer versions of the record: keep reading.
    if (!ok) return std::nullopt;
  }
  return record;
}

}  // namespace conduit::spool
