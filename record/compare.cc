#include "record/compare.h"

#include <cmath>
#include <filesystem>

#include "record/figure.h"
#include "record/files.h"
#include "record/html_page.h"
#include "record/report.h"
#include "record/run_figures.h"

namespace edgebed {

using json = nlohmann::json;

namespace {

// The axis label (with its unit) of a row field, and the factor its values are shown with.
std::pair<std::string, double> AxisOf(const std::string& field) {
  if (field == "round") return {"round (epoch for GNN runs)", 1.0};
  if (field == "elapsed_s") return {"wall time since the start (s)", 1.0};
  if (field == "virtual_clock_s") return {"virtual time (s)", 1.0};
  if (field.find("accuracy") != std::string::npos) return {field + " (fraction correct)", 1.0};
  const std::string unit = FieldUnit(field);
  if (unit == "bytes") return {field + " (MB)", 1e-6};
  return {unit.empty() ? field : field + " (" + unit + ")", 1.0};
}

std::string FolderName(const std::string& folder) {
  std::filesystem::path p(folder);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

std::string Csv(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Fixed(double v, int digits) {
  if (!std::isfinite(v)) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The table line of a run from its rows (read once by the caller), summary and scenario.
RunFacts FactsOf(const std::string& folder, const std::string& label, const std::vector<json>& rows) {
  RunFacts f;
  f.folder = folder;
  f.label = label.empty() ? FolderName(folder) : label;
  const RunMode mode = DetectRunMode(rows);
  f.mode = RunModeName(mode);
  const char* axis = mode == RunMode::kGnn ? "epoch" : "round";
  for (const auto& r : rows) {
    const double round = r.value(axis, json(0)).is_number() ? r[axis].get<double>() : 0.0;
    f.rounds = std::max(f.rounds, round);
    if (r.contains("test_accuracy") && r["test_accuracy"].is_number()) {
      const double a = r["test_accuracy"].get<double>();
      f.final_accuracy = a;
      if (a > f.best_accuracy) f.best_accuracy = a, f.best_round = round;
    }
    f.wall_s = std::max(f.wall_s, r.value("elapsed_s", 0.0));
    f.virtual_s = std::max(f.virtual_s, r.value("virtual_clock_s", 0.0));
    f.uplink_mb += r.value("uplink_bytes", 0.0) / 1e6;
    f.downlink_mb += r.value("downlink_bytes", 0.0) / 1e6;
    f.failures += r.value("failures", 0.0);
    f.offline += r.value("dropouts", 0.0);
  }
  auto summary_text = ReadFile(folder + "/summary.json");
  json summary = summary_text.ok() ? json::parse(summary_text.value(), nullptr, false) : json();
  f.status = summary.is_object() ? summary.value("status", std::string("?")) : std::string("no summary (running or interrupted)");
  if (summary.is_object()) f.wall_s = std::max(f.wall_s, summary.value("wall_s", 0.0));
  auto toml = ReadFile(folder + "/scenario.toml");
  f.name = toml.ok() ? ScenarioNameOf(toml.value()) : "";
  if (f.name.empty()) f.name = "?";
  return f;
}

// A run folder's rows; an error names the folder.
Result<std::vector<json>> RunRows(const std::string& folder) {
  auto rows = ReadMetricsRows(folder);
  if (!rows.ok()) return Status::NotFound("run folder " + folder + ": " + rows.status().message());
  return rows;
}

}  // namespace

Result<RunFacts> ReadRunFacts(const std::string& folder, const std::string& label) {
  EDGEBED_ASSIGN_OR_RETURN(std::vector<json> rows, RunRows(folder));
  return FactsOf(folder, label, rows);
}

std::string CompareCsv(const std::vector<RunFacts>& runs) {
  std::string csv =
      "run,folder,scenario,mode,status,rounds,final_test_accuracy,best_test_accuracy,best_round,wall_s,virtual_s,"
      "uplink_mb,downlink_mb,failures,offline\n";
  for (const auto& f : runs)
    csv += Csv(f.label) + "," + Csv(f.folder) + "," + Csv(f.name) + "," + Csv(f.mode) + "," + Csv(f.status) + "," +
           Fixed(f.rounds, 0) + "," + (f.final_accuracy >= 0 ? Fixed(f.final_accuracy, 4) : "") + "," +
           (f.best_accuracy >= 0 ? Fixed(f.best_accuracy, 4) : "") + "," + Fixed(f.best_round, 0) + "," +
           Fixed(f.wall_s, 1) + "," + Fixed(f.virtual_s, 2) + "," + Fixed(f.uplink_mb, 3) + "," +
           Fixed(f.downlink_mb, 3) + "," + Fixed(f.failures, 0) + "," + Fixed(f.offline, 0) + "\n";
  return csv;
}

Result<std::vector<RunFacts>> WriteComparison(const CompareOptions& o) {
  if (o.runs.empty()) return Status::InvalidArgument("compare: name at least one run folder");
  if (!o.labels.empty() && o.labels.size() != o.runs.size())
    return Status::InvalidArgument("compare: " + std::to_string(o.labels.size()) + " labels for " +
                                   std::to_string(o.runs.size()) + " runs");
  if (o.x != "round" && o.x != "elapsed_s" && o.x != "virtual_clock_s")
    return Status::InvalidArgument("--x = '" + o.x + "': allowed round, elapsed_s, virtual_clock_s");
  if (o.metrics.empty()) return Status::InvalidArgument("--metric: name at least one row field");
  std::vector<RunFacts> facts;
  std::vector<std::vector<json>> rows;
  for (size_t i = 0; i < o.runs.size(); ++i) {
    EDGEBED_ASSIGN_OR_RETURN(std::vector<json> r, RunRows(o.runs[i]));
    facts.push_back(FactsOf(o.runs[i], o.labels.empty() ? "" : o.labels[i], r));
    rows.push_back(std::move(r));
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return Status::IoError("--out " + o.out_dir + ": " + ec.message());
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/compare.csv", CompareCsv(facts)));

  std::vector<Figure> figs;
  const auto [x_label, x_factor] = AxisOf(o.x);
  for (const auto& metric : o.metrics) {
    const auto [y_label, y_factor] = AxisOf(metric);
    Figure fig{"cmp_" + std::to_string(figs.size()), metric + " against " + o.x, x_label, y_label, {}};
    fig.integer_x = o.x == "round";
    for (size_t i = 0; i < rows.size(); ++i) {
      const std::string x_field = o.x == "round" && DetectRunMode(rows[i]) == RunMode::kGnn ? "epoch" : o.x;
      Series s{facts[i].label, RowValues(rows[i], x_field), RowValues(rows[i], metric)};
      for (double& v : s.y) v *= y_factor;
      for (double& v : s.x) v *= x_factor;
      fig.series.push_back(std::move(s));
    }
    figs.push_back(std::move(fig));
  }
  SvgOptions svg;
  svg.work_dir = o.out_dir + "/logs/compare-svg";
  svg.log_path = o.out_dir + "/logs/gnuplot-compare.log";
  auto svgs = RenderSvgs(figs, svg);
  HtmlPage page("edgebed compare: " + o.title);
  std::vector<std::vector<std::string>> table = {{"run", "scenario", "mode", "status", "rounds", "final accuracy",
                                                  "best accuracy (round)", "wall (s)", "virtual (s)", "uplink MB",
                                                  "downlink MB", "failures", "offline"}};
  for (const auto& f : facts)
    table.push_back({f.label, f.name, f.mode, f.status, Fixed(f.rounds, 0), f.final_accuracy >= 0 ? Fixed(f.final_accuracy, 4) : "",
                     f.best_accuracy >= 0 ? Fixed(f.best_accuracy, 4) + " (" + Fixed(f.best_round, 0) + ")" : "",
                     Fixed(f.wall_s, 1), Fixed(f.virtual_s, 2), Fixed(f.uplink_mb, 3), Fixed(f.downlink_mb, 3),
                     Fixed(f.failures, 0), Fixed(f.offline, 0)});
  page.Table(table);
  page.Heading("Curves");
  page.Figures(figs, svgs.ok() ? svgs.value() : std::vector<std::string>(figs.size()),
               svgs.ok() ? "no run has a row with these metrics: " + o.metrics.front()
                         : "no figures: " + svgs.status().message());
  page.Heading("Folders");
  std::vector<std::vector<std::string>> folders = {{"run", "folder"}};
  for (const auto& f : facts) folders.push_back({f.label, f.folder});
  page.Table(folders);
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/compare.html", page.Render()));
  return facts;
}

}  // namespace edgebed
