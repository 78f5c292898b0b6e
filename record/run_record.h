// The result files of a run folder: metrics.jsonl (every field of each row), metrics.csv (the columns
// plots and spreadsheets read) and summary.json. Every write is checked: a failure is an error
// naming the file, and the rows written before it stay whole. The summary is replaced atomically.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "codecs/status.h"
#include "record/files.h"

namespace edgebed {

// A metrics.csv column: the row field it shows and the value written when a row lacks it.
struct CsvColumn {
  std::string field;
  nlohmann::json missing;
};

// The columns of a federated run's metrics.csv.
const std::vector<CsvColumn>& FederatedCsvColumns();

class RunRecord {
 public:
  // Starts metrics.jsonl and metrics.csv in `dir` afresh.
  [[nodiscard]] Status Open(const std::string& dir, std::vector<CsvColumn> columns);
  // Resuming: keeps the rows of rounds <= `last_round` (dropping any written after the checkpoint),
  // rewrites metrics.csv from them, and appends from there.
  [[nodiscard]] Status Reopen(const std::string& dir, std::vector<CsvColumn> columns, uint32_t last_round);
  // Appends one row (an object with "round") to both files.
  [[nodiscard]] Status WriteRow(const nlohmann::json& row);
  // Writes <dir>/summary.json atomically.
  [[nodiscard]] Status WriteSummary(const nlohmann::json& summary) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string CsvLine(const nlohmann::json& row) const;
  std::string CsvHeader() const;
  std::string dir_;
  std::vector<CsvColumn> columns_;
  LineFile jsonl_, csv_;
};

// Writes `summary` to <dir>/summary.json atomically (for runs that keep no metrics rows).
[[nodiscard]] Status WriteSummaryFile(const std::string& dir, const nlohmann::json& summary);

}  // namespace edgebed
