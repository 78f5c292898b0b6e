// Several run folders side by side: a table (compare.csv) and overlaid curves of any metric against
// the round, the wall clock or the virtual clock (compare.html, self-contained like report.html).
// `edgebed compare` and sweeps use it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct CompareOptions {
  std::vector<std::string> runs;     // run folders (each with metrics.jsonl)
  std::vector<std::string> labels;   // one per run, or empty: the folders' names
  std::vector<std::string> metrics = {"test_accuracy", "test_loss", "uplink_bytes"};  // row fields
  std::string x = "round";           // round (epoch for GNN runs), elapsed_s or virtual_clock_s
  std::string out_dir;               // compare.html and compare.csv go here
  std::string title = "comparison";
};

// One row of the table per run.
struct RunFacts {
  std::string label, folder, name, mode, status;
  double rounds = 0, final_accuracy = -1, best_accuracy = -1, best_round = 0, wall_s = 0, virtual_s = 0;
  double uplink_mb = 0, downlink_mb = 0, failures = 0, offline = 0;
};

// Reads a run folder's rows and summary. Errors name the folder and what is missing.
[[nodiscard]] Result<RunFacts> ReadRunFacts(const std::string& folder, const std::string& label);

// The table as CSV: a header line, then one line per run (labels quoted).
std::string CompareCsv(const std::vector<RunFacts>& runs);

// Checks the options (errors name the option and its allowed values), reads every run, writes
// <out_dir>/compare.csv and <out_dir>/compare.html.
[[nodiscard]] Result<std::vector<RunFacts>> WriteComparison(const CompareOptions& options);

}  // namespace edgebed
