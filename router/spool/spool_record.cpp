#include "router/spool/spool_record.h"

#include <charconv>
#include <string>

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

std::string FormatTime(std::chrono::system_clock::time_point time) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  return std::to_string(micros);
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
  PutLine(out, "received_at_unix_us", FormatTime(record.facts.received_at));
  PutLine(out, "sop_class_uid", record.sop_class_uid);
  PutLine(out, "sop_instance_uid", record.sop_instance_uid);
  PutLine(out, "transfer_syntax_uid", record.transfer_syntax_uid);
  PutLine(out, "study_instance_uid", record.study_instance_uid);
  PutLine(out, "series_instance_uid", record.series_instance_uid);
  PutLine(out, "modality", record.modality);
  PutLine(out, "dataset_bytes", std::to_string(record.dataset_bytes));
  return out;
}

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
    } else if (key == "received_at_unix_us") {
      std::int64_t micros = 0;
      ok = ParseInteger(value, micros);
      record.facts.received_at =
          std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
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
    }
    // Unknown keys come from newer versions of the record: keep reading.
    if (!ok) return std::nullopt;
  }
  return record;
}

}  // namespace conduit::spool
