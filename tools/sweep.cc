#include "tools/sweep.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "record/compare.h"
#include "record/figure.h"
#include "record/plot.h"
#include "record/progress.h"
#include "record/report.h"
#include "record/run_record.h"
#include "tools/launcher.h"

namespace edgebed {
namespace fs = std::filesystem;

namespace {

Result<Scenario> Resolve(const SweepOptions& opt, const std::vector<std::string>& extra) {
  std::vector<std::string> all = opt.overrides;
  all.insert(all.end(), extra.begin(), extra.end());
  if (opt.scenario_path.empty()) return ParseScenario(DefaultScenarioText(), all, "<default scenario>");
  return LoadScenario(opt.scenario_path, all);
}

std::string Label(const std::string& v) {
  std::string s;
  for (char c : v) s += (c == '"' || c == '\'') ? '\0' : c;
  s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
  return s;
}

}  // namespace

std::string SweepLegend(const std::string& field, const std::string& value) {
  const std::string unit = FieldUnit(field);
  const size_t dot = field.rfind('.');
  return (dot == std::string::npos ? field : field.substr(dot + 1)) + " = " + Label(value) + (unit.empty() ? "" : " " + unit);
}

int RunSweep(const SweepOptions& opt, const std::string& exe) {
  if (opt.values.empty()) {
    spdlog::error("sweep: --values is empty");
    return 2;
  }
  // Check every run's scenario before starting any.
  std::vector<Scenario> runs;
  auto base = Resolve(opt, {});
  if (!base.ok()) {
    spdlog::error("{}", base.status().message());
    return 2;
  }
  const std::string out = opt.out_dir.empty() ? base->output_dir + "/sweep-" + opt.field : opt.out_dir;
  for (const auto& v : opt.values) {
    auto sc = Resolve(opt, {opt.field + "=" + v});
    if (!sc.ok()) {
      spdlog::error("sweep value {} = {}: {}", opt.field, v, sc.status().message());
      return 2;
    }
    sc->output_dir = out + "/" + opt.field + "=" + Label(v);
    sc->name = base->name + " (" + SweepLegend(opt.field, v) + ")";  // each run's plots and report say which it is
    runs.push_back(sc.value());
  }
  const std::map<std::string, int> columns = {{"round", 1}, {"elapsed_s", 9}, {"virtual_clock_s", 10}};
  if (!columns.count(opt.x)) {
    spdlog::error("sweep: --x '{}' is not a column; allowed: round, elapsed_s, virtual_clock_s", opt.x);
    return 2;
  }
  const std::string xcol = std::to_string(columns.at(opt.x));
  fs::create_directories(out);
  nlohmann::json summary = nlohmann::json::array();
  Progress progress("sweep", static_cast<double>(runs.size()), "runs done", 0.0, /*live=*/false);  // a line per run
  for (size_t i = 0; i < runs.size(); ++i) {
    progress.Update(static_cast<double>(i), "next: " + SweepLegend(opt.field, opt.values[i]));
    if (RunFederation(runs[i], exe) != 0) {
      spdlog::error("sweep: the run with {} = {} failed; see {}", opt.field, opt.values[i], runs[i].output_dir);
      return 1;
    }
    auto rows = ReadMetricsRows(runs[i].output_dir);
    if (!rows.ok()) {
      spdlog::error("sweep: {}", rows.status().message());
      return 1;
    }
    double final_acc = 0, best = 0, airtime = 0, energy = 0, lost = 0;
    int rounds = 0;
    for (const auto& row : rows.value()) {
      final_acc = row["test_accuracy"];
      best = std::max(best, final_acc);
      if (row["round"].get<int>() == 0) continue;
      ++rounds;
      airtime += row.value("uplink_airtime_s", 0.0);
      energy += row.value("uplink_tx_energy_j", 0.0);
      lost += row.value("lost_packets", 0.0);
    }
    summary.push_back({{"value", Label(opt.values[i])}, {"final_test_accuracy", final_acc}, {"best_test_accuracy", best},
                       {"rounds", rounds}, {"uplink_airtime_s_per_round", rounds ? airtime / rounds : 0.0},
                       {"uplink_tx_energy_j_per_round", rounds ? energy / rounds : 0.0},
                       {"lost_packets_per_round", rounds ? lost / rounds : 0.0}, {"dir", runs[i].output_dir}});
  }
  std::string csv = opt.field + ",final_test_accuracy,best_test_accuracy,uplink_airtime_s_per_round,"
                    "uplink_tx_energy_j_per_round,lost_packets_per_round\n";
  for (const auto& s : summary)
    csv += s["value"].get<std::string>() + ',' + s["final_test_accuracy"].dump() + ',' + s["best_test_accuracy"].dump() +
           ',' + s["uplink_airtime_s_per_round"].dump() + ',' + s["uplink_tx_energy_j_per_round"].dump() + ',' +
           s["lost_packets_per_round"].dump() + "\n";
  for (Status st : {WriteSummaryFile(out, summary), WriteFileAtomic(out + "/summary.csv", csv)}) {
    if (!st.ok()) {
      spdlog::error("sweep: {}", st.message());
      return 1;
    }
  }
  // One plot, a curve per value.
  std::string gp = "set terminal pngcairo noenhanced size 1200,440 font 'sans,10'\nset output " +
                   GnuplotPath(out + "/sweep.png") + "\nset datafile separator ','\nset grid\n"
                   "set key outside right top\n"
                   "set multiplot layout 1,2 title " + GnuplotString(base->name + ": " + opt.field) + "\n"
                   "set xlabel " + GnuplotString(opt.x) + "; set ylabel 'test accuracy'\n";
  for (const char* col : {"2", "3"}) {
    if (std::string(col) == "3") gp += "set ylabel 'test loss'\n";
    gp += "plot ";
    for (size_t i = 0; i < runs.size(); ++i)
      gp += (i ? ", " : "") + GnuplotPath(runs[i].output_dir + "/metrics.csv") + " using " + xcol +
            ":" + col + " skip 1 with linespoints pt 7 ps 0.5 title " + GnuplotString(SweepLegend(opt.field, opt.values[i]));
    gp += "\n";
  }
  gp += "unset multiplot\n";
  if (Status st = RunGnuplot(gp, out + "/gnuplot.log"); !st.ok()) spdlog::warn("sweep: no plot: {}", st.message());
  CompareOptions cmp;
  for (size_t i = 0; i < runs.size(); ++i) {
    cmp.runs.push_back(runs[i].output_dir);
    cmp.labels.push_back(SweepLegend(opt.field, opt.values[i]));
  }
  cmp.x = opt.x;
  cmp.out_dir = out;
  cmp.title = base->name + ": sweep of " + opt.field;
  if (auto c = WriteComparison(cmp); !c.ok()) {
    spdlog::error("sweep: {}", c.status().message());
    return 1;
  }
  spdlog::info("sweep done: {0}/compare.html (table and curves), {0}/sweep.png, {0}/summary.csv", out);
  for (const auto& s : summary)
    spdlog::info("  {} = {:<12} final accuracy {:.4f}  best {:.4f}  airtime/round {:.3f} s  lost packets/round {:.0f}",
                 opt.field, s["value"].get<std::string>(), s["final_test_accuracy"].get<double>(),
                 s["best_test_accuracy"].get<double>(), s["uplink_airtime_s_per_round"].get<double>(),
                 s["lost_packets_per_round"].get<double>());
  return 0;
}

}  // namespace edgebed
