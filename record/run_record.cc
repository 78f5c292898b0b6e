#include "record/run_record.h"

#include <sstream>

namespace edgebed {

using json = nlohmann::json;

const std::vector<CsvColumn>& FederatedCsvColumns() {
  static const std::vector<CsvColumn> cols = {
      {"round", nullptr},          {"test_accuracy", nullptr}, {"test_loss", nullptr}, {"participants", nullptr},
      {"failures", nullptr},       {"uplink_bytes", nullptr},  {"downlink_bytes", nullptr}, {"wall_s", nullptr},
      {"elapsed_s", nullptr},      {"virtual_clock_s", 0.0},   {"energy_j", 0.0},
      // after the first eleven, whose positions sweeps and scripts read
      {"train_loss", 0.0},         {"selected", 0},            {"dropouts", 0},        {"uplink_airtime_s", 0.0},
      {"uplink_tx_energy_j", 0.0}, {"lost_packets", 0},        {"retransmissions", 0}, {"uplink_payload_bits", 0}};
  return cols;
}

std::string RunRecord::CsvHeader() const {
  std::string h;
  for (const auto& c : columns_) h += (h.empty() ? "" : ",") + c.field;
  return h;
}

std::string RunRecord::CsvLine(const json& row) const {
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i) line += ',';
    auto it = row.find(columns_[i].field);
    line += (it != row.end() ? *it : columns_[i].missing).dump();
  }
  return line;
}

Status RunRecord::Open(const std::string& dir, std::vector<CsvColumn> columns) {
  dir_ = dir;
  columns_ = std::move(columns);
  EDGEBED_RETURN_IF_ERROR(jsonl_.Open(dir + "/metrics.jsonl", /*append=*/false));
  EDGEBED_RETURN_IF_ERROR(csv_.Open(dir + "/metrics.csv", /*append=*/false));
  return csv_.Append(CsvHeader());
}

Status RunRecord::Reopen(const std::string& dir, std::vector<CsvColumn> columns, uint32_t last_round) {
  dir_ = dir;
  columns_ = std::move(columns);
  const std::string jsonl_path = dir + "/metrics.jsonl";
  auto text = ReadFile(jsonl_path);
  if (!text.ok()) return text.status();
  std::string kept_jsonl, kept_csv = CsvHeader() + "\n";
  std::istringstream in(text.value());
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.contains("round") || !row["round"].is_number_unsigned())
      break;  // a line cut by the crash: it and anything after it are not kept
    if (row["round"].get<uint32_t>() > last_round) break;
    kept_jsonl += line + "\n";
    kept_csv += CsvLine(row) + "\n";
  }
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(jsonl_path, kept_jsonl));
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(dir + "/metrics.csv", kept_csv));
  EDGEBED_RETURN_IF_ERROR(jsonl_.Open(jsonl_path, /*append=*/true));
  return csv_.Open(dir + "/metrics.csv", /*append=*/true);
}

Status RunRecord::WriteRow(const json& row) {
  EDGEBED_RETURN_IF_ERROR(jsonl_.Append(row.dump()));
  return csv_.Append(CsvLine(row));
}

Status RunRecord::WriteSummary(const json& summary) const { return WriteSummaryFile(dir_, summary); }

Status WriteSummaryFile(const std::string& dir, const json& summary) {
  return WriteFileAtomic(dir + "/summary.json", summary.dump(2) + "\n");
}

}  // namespace edgebed
