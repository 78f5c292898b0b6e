// report.html: one self-contained page per run folder that a browser opens without a network: the
// run's state, its summary, the figures of its mode (run_figures.h, inline SVG with units and
// legends) and the resolved scenario. The server rewrites it while the run goes, so an interrupted
// run has one too; the launcher writes the last one.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

enum class ReportState {
  kRunning,      // rows so far; summary.json (if any) is an earlier run's and is not read
  kFinished,     // the run wrote its summary.json
  kInterrupted,  // the server ended without a summary (killed, crashed)
};

// The rows of <dir>/metrics.jsonl; a last line cut short by a crash is left out. Errors name the file.
// `each`, when set, sees every row as it is read and may fold or trim it before it is kept.
[[nodiscard]] Result<std::vector<nlohmann::json>> ReadMetricsRows(
    const std::string& dir, const std::function<void(nlohmann::json*)>& each = nullptr);

// The top-level `name` of a resolved scenario.toml ('...' or "..."), or "" when it has none.
std::string ScenarioNameOf(const std::string& toml);

// A CSV file's lines after its header as objects keyed by the header (numbers as numbers); lines
// with another number of cells (cut short) are left out. Errors name the file.
[[nodiscard]] Result<std::vector<nlohmann::json>> ReadCsvRows(const std::string& path);

// Writes <dir>/report.html atomically. A plot that gnuplot cannot draw leaves its place to a note
// naming the log; a failed write is an error naming report.html.
[[nodiscard]] Status WriteReport(const std::string& dir, ReportState state);

}  // namespace edgebed
