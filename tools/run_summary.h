// The table `edgebed run` prints when a run ends: accuracy, rounds, wall and virtual time, bytes, and
// failures by cause, read from the run folder's summary.json and metrics.jsonl.
#pragma once
#include <string>

namespace edgebed {

// The table for run folder `out` ("" when summary.json cannot be read). `unit` names a row of
// metrics.jsonl: round, epoch or step.
std::string RunSummaryTable(const std::string& out, const std::string& unit);

}  // namespace edgebed
