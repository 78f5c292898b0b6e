#include "tools/report_cmd.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "record/report.h"
#include "tools/launcher.h"

namespace edgebed {

void AddReportCommands(CLI::App& app, ReportCommands* c) {
  c->report = app.add_subcommand("report", "write report.html (and metrics.png) of a run folder again");
  c->report->alias("plot");
  c->report->add_option("dir", c->report_dir, "run output folder (holds metrics.jsonl)")->required()->check(CLI::ExistingDirectory);
  CompareOptions& o = c->compare_options;
  o.out_dir = "runs/compare";
  c->compare = app.add_subcommand("compare", "put run folders side by side: compare.html (table, overlaid curves) and compare.csv");
  c->compare->add_option("runs", o.runs, "run output folders")->required()->check(CLI::ExistingDirectory);
  c->compare->add_option("--out", o.out_dir, "folder for compare.html and compare.csv")->capture_default_str();
  c->compare->add_option("--metric", o.metrics, "a metrics.jsonl field to plot (repeatable)")->capture_default_str();
  c->compare->add_option("--x", o.x, "x axis: round | elapsed_s | virtual_clock_s")
      ->check(CLI::IsMember({"round", "elapsed_s", "virtual_clock_s"}));
  c->compare->add_option("--label", o.labels, "a legend label per run, in order (default: the folders' names)");
}

int RunReportCommands(ReportCommands& c) {
  if (*c.report) {
    const std::string& dir = c.report_dir;
    // A summary: finished; else the launcher's server.pid: still running; else interrupted.
    const ReportState state = std::filesystem::exists(dir + "/summary.json") ? ReportState::kFinished
                              : std::filesystem::exists(dir + "/server.pid") ? ReportState::kRunning
                                                                              : ReportState::kInterrupted;
    Status st = WriteReport(dir, state);
    if (!st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
    spdlog::info("wrote {}/report.html", dir);
    return PlotMetrics(dir, std::filesystem::path(dir).filename().string()) ? 0 : 1;
  }
  if (*c.compare) {
    CompareOptions& o = c.compare_options;
    o.title = std::to_string(o.runs.size()) + " runs";
    auto facts = WriteComparison(o);
    if (!facts.ok()) {
      spdlog::error("{}", facts.status().message());
      return 2;
    }
    for (const auto& f : facts.value())
      spdlog::info("{:<24} {:<10} final accuracy {:>7}  {} rounds  {:.1f} s", f.label, f.status,
                   f.final_accuracy >= 0 ? fmt::format("{:.4f}", f.final_accuracy) : "-", f.rounds, f.wall_s);
    spdlog::info("wrote {0}/compare.html and {0}/compare.csv", o.out_dir);
    return 0;
  }
  return -1;
}

}  // namespace edgebed
