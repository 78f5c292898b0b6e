#include "record/report.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "record/files.h"
#include "record/html_page.h"
#include "record/run_figures.h"

namespace edgebed {

using json = nlohmann::json;

namespace {

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buf;
}

// The scenario's name, or the folder's when it has none.
std::string RunName(const std::string& toml, const std::string& dir) {
  const std::string name = ScenarioNameOf(toml);
  if (!name.empty()) return name;
  const size_t slash = dir.find_last_of('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

const char* StateText(ReportState s) {
  switch (s) {
    case ReportState::kRunning: return "running";
    case ReportState::kInterrupted: return "interrupted (the server ended without writing summary.json)";
    default: return "finished";
  }
}

}  // namespace

std::string ScenarioNameOf(const std::string& toml) {
  std::istringstream in(toml);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '[') break;  // the top-level keys come before the first table
    if (line.rfind("name = ", 0) != 0 || line.size() < 9) continue;
    const char q = line[7];
    const size_t end = line.rfind(q);
    if ((q == '\'' || q == '"') && end > 7) return line.substr(8, end - 8);
  }
  return "";
}

Result<std::vector<json>> ReadCsvRows(const std::string& path) {
  EDGEBED_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream in(text);
  std::vector<std::string> header;
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    if (header.empty()) {
      header = cells;
      continue;
    }
    if (cells.size() != header.size()) continue;  // a line cut short
    json row = json::object();
    for (size_t i = 0; i < cells.size(); ++i) {
      char* end = nullptr;
      const double v = std::strtod(cells[i].c_str(), &end);
      row[header[i]] = (!cells[i].empty() && end && *end == '\0') ? json(v) : json(cells[i]);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::vector<json>> ReadMetricsRows(const std::string& dir, const std::function<void(json*)>& each) {
  std::vector<json> rows;
  const std::string path = dir + "/metrics.jsonl";
  std::ifstream in(path);  // line by line: a population run's file is tens of MB
  if (!in) return Status::NotFound("cannot read " + path + ": " + std::strerror(errno));
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.is_object()) break;  // cut short by a crash: nothing after it is whole
    if (each) each(&row);
    rows.push_back(std::move(row));
  }
  if (in.bad()) return Status::IoError("reading " + path + " failed");
  return rows;
}

Status WriteReport(const std::string& dir, ReportState state) {
  LinkTotals link;
  auto rows = ReadMetricsRows(dir, [&](json* row) { FoldAndTrim(row, &link); });
  std::vector<json> none;
  const std::vector<json>& r = rows.ok() ? rows.value() : none;
  json summary;
  if (state == ReportState::kFinished) {
    auto text = ReadFile(dir + "/summary.json");
    if (text.ok()) summary = json::parse(text.value(), nullptr, /*allow_exceptions=*/false);
    if (summary.is_discarded()) summary = json();
  }
  auto toml = ReadFile(dir + "/scenario.toml");
  const std::string name = RunName(toml.ok() ? toml.value() : "", dir);
  const RunMode mode = DetectRunMode(r);
  const char* axis = mode == RunMode::kGnn ? "epoch" : "round";

  HtmlPage page("edgebed run: " + name);
  std::vector<std::vector<std::string>> head = {{"run", "value"}};
  head.push_back({"state", StateText(state)});
  if (summary.is_object()) {
    head.push_back({"run id", summary.value("run_id", std::string("?"))});
    head.push_back({"status", summary.value("status", std::string("?"))});
    if (summary.value("stop_reason", json()).is_string()) head.push_back({"stop reason", summary["stop_reason"].get<std::string>()});
  }
  head.push_back({"mode", RunModeName(mode)});
  head.push_back({"folder", dir});
  if (!r.empty()) {
    head.push_back({std::string("last ") + axis, r.back().value(axis, json()).dump()});
    if (r.back().contains("test_accuracy")) head.push_back({"last test accuracy", r.back()["test_accuracy"].dump()});
    if (r.back().contains("elapsed_s")) head.push_back({"elapsed (s)", r.back()["elapsed_s"].dump()});
  }
  head.push_back({"page written", UtcNow()});
  page.Table(head);
  if (!rows.ok()) page.Paragraph("no metrics yet: " + rows.status().message());

  page.Heading("Figures");
  std::vector<Figure> figs = RunFigures(r, summary, &link);
  if (auto requests = ReadCsvRows(dir + "/inference.csv"); requests.ok() && mode == RunMode::kSplit)
    for (auto& f : InferenceFigures(requests.value(), summary)) figs.push_back(std::move(f));
  SvgOptions svg;
  svg.work_dir = dir + "/logs/report-svg";
  svg.log_path = dir + "/logs/gnuplot-report.log";
  auto svgs = RenderSvgs(figs, svg);
  page.Figures(figs, svgs.ok() ? svgs.value() : std::vector<std::string>(figs.size()),
               svgs.ok() ? "no figures yet: no " + std::string(axis) + " has finished"
                         : "no figures: " + svgs.status().message());
  if (summary.is_object()) {
    page.Heading("Summary (summary.json)");
    page.KeyValues(summary);
  }
  page.Heading("Scenario (scenario.toml, as resolved)");
  page.Preformatted(toml.ok() ? toml.value() : toml.status().message());
  return WriteFileAtomic(dir + "/report.html", page.Render());
}

}  // namespace edgebed
