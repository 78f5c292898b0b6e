#include "tools/run_summary.h"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "record/report.h"

namespace edgebed {
namespace {

// "straggler: done at ..." -> "straggler"; "TRAINING_FAILED: ..." -> "TRAINING_FAILED".
std::string Cause(const std::string& reason) {
  const size_t colon = reason.find(':');
  std::string c = reason.substr(0, colon == std::string::npos ? std::min<size_t>(reason.size(), 60) : colon);
  if (c.rfind("silent for more than", 0) == 0) c = "silent (liveness timeout)";
  if (c.rfind("missed the round deadline", 0) == 0) c = "missed the round deadline";
  return c;
}

}  // namespace

std::string RunSummaryTable(const std::string& out, const std::string& unit) {
  nlohmann::json summary;
  try {
    std::ifstream in(out + "/summary.json");
    if (!in) return "";
    summary = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return "";
  }
  double up = 0.0, down = 0.0, virtual_s = 0.0, accuracy = -1.0;
  size_t rows = 0, updates = 0, offline = 0;
  std::map<std::string, size_t> causes;
  // Each row is folded into the totals as it is read and then dropped: a population run's rows hold
  // per-node link lists (3.1 MB of metrics.jsonl for BENCHMARKS' 100,000-node run, many times that as
  // parsed JSON). A row cut short by a crash is left out; an unreadable file is named in the table.
  const Result<std::vector<nlohmann::json>> read = ReadMetricsRows(out, [&](nlohmann::json* row) {
    const nlohmann::json& r = *row;
    if (r.value("round", r.value("epoch", 0)) == 0) return row->clear();
    ++rows;
    up += r.value("uplink_bytes", 0.0);
    down += r.value("downlink_bytes", 0.0);
    virtual_s = std::max(virtual_s, r.value("virtual_clock_s", 0.0));
    updates += r.value("participants", 0);
    offline += r.value("dropouts", 0);
    if (r.contains("test_accuracy") && r["test_accuracy"].is_number()) accuracy = r["test_accuracy"].get<double>();
    if (r.contains("failed_nodes"))
      for (const auto& f : r["failed_nodes"]) ++causes[Cause(f.value("reason", std::string("?")))];
    row->clear();
  });
  std::string t = fmt::format("{:-^60}\n", " run summary ");
  t += fmt::format("{:<22}{}\n", "status", summary.value("status", std::string("?")));
  if (!read.ok()) t += fmt::format("{:<22}{}\n", "metrics", read.status().message());
  if (summary.contains("stop_reason") && summary["stop_reason"].is_string() && !summary["stop_reason"].get<std::string>().empty())
    t += fmt::format("{:<22}{}\n", "stop reason", summary["stop_reason"].get<std::string>());
  t += fmt::format("{:<22}{} ({} with metrics)\n", unit + "s completed", summary.value("rounds_completed", rows), rows);
  const double final_acc = summary.contains("final_test_accuracy") && summary["final_test_accuracy"].is_number()
                               ? summary["final_test_accuracy"].get<double>() : accuracy;
  if (final_acc >= 0.0) t += fmt::format("{:<22}{:.4f}\n", "final test accuracy", final_acc);
  t += fmt::format("{:<22}{:.1f} s\n", "wall time", summary.value("wall_s", 0.0));
  if (virtual_s > 0.0) t += fmt::format("{:<22}{:.2f} s\n", "virtual time", virtual_s);
  if (updates > 0) t += fmt::format("{:<22}{}\n", "updates applied", updates);
  t += fmt::format("{:<22}{:.2f} MB up, {:.2f} MB down\n", "bytes", up / 1e6, down / 1e6);
  if (causes.empty()) {
    t += fmt::format("{:<22}none\n", "failures");
  } else {
    size_t total = 0;
    for (const auto& [c, n] : causes) total += n;
    t += fmt::format("{:<22}{}\n", "failures", total);
    for (const auto& [c, n] : causes) t += fmt::format("  {:<20}{}\n", c, n);
  }
  if (offline > 0) t += fmt::format("{:<22}{} (not failures)\n", "offline when selected", offline);
  t += std::string(60, '-');
  return t;
}

}  // namespace edgebed
