// record/: the figures a run folder's rows give for each mode, report.html (escaped, self-contained,
// honest about a run still going), edgebed compare's table, and the progress estimate.
#include <doctest/doctest.h>

#include <cmath>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "record/compare.h"
#include "record/figure.h"
#include "record/files.h"
#include "tests/record/record_test_files.h"
#include "record/progress.h"
#include "record/report.h"
#include "record/run_figures.h"

using namespace edgebed;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string Dir(const std::string& tag) { return record_test::Dir("report", tag); }
using record_test::Slurp;

std::vector<std::string> Keys(const std::vector<Figure>& figs) {
  std::vector<std::string> k;
  for (const auto& f : figs) k.push_back(f.key);
  return k;
}

bool Has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// A federated run's rows: round 0, then `rounds` rounds with the given uplink figures.
std::vector<json> FederatedRows(int rounds, double accuracy_step, int lost_packets, bool ota) {
  std::vector<json> rows = {{{"round", 0}, {"test_accuracy", 0.1}, {"test_loss", 2.3}, {"elapsed_s", 1.0}}};
  for (int r = 1; r <= rounds; ++r) {
    json links = json::array();
    for (int n = 0; n < 3; ++n)
      links.push_back({{"node", n}, {"packets", 10}, {"lost_packets", lost_packets}, {"airtime_s", lost_packets ? 0.5 : 0.0},
                       {"snr_db", 5.0 + n}});
    rows.push_back({{"round", r}, {"test_accuracy", 0.1 + accuracy_step * r}, {"test_loss", 2.3 - 0.1 * r},
                    {"train_loss", 2.0 - 0.1 * r}, {"uplink_bytes", 1.5e6}, {"downlink_bytes", 2e6}, {"elapsed_s", 1.0 + 2 * r},
                    {"virtual_clock_s", 1.5 * r}, {"selected", 4}, {"participants", 3}, {"failures", 1}, {"dropouts", 0},
                    {"uplink_airtime_s", lost_packets ? 1.5 : 0.0}, {"uplink_tx_energy_j", 0.1}, {"link_per_node", links},
                    {"ota", ota ? json{{"count_nmse", 0.01 / r}, {"aggregate_nmse", 0.001}} : json()}});
  }
  return rows;
}

void WriteRows(const std::string& dir, const std::vector<json>& rows, const std::string& tail = "") {
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  REQUIRE(WriteFileAtomic(dir + "/metrics.jsonl", text + tail).ok());
}

}  // namespace

TEST_CASE("the time left is the rate so far over what remains; durations read as a person writes them") {
  CHECK(TimeLeft(30.0, 3, 10) == doctest::Approx(70.0));
  CHECK(TimeLeft(12.0, 0.25, 1.0) == doctest::Approx(36.0));
  CHECK(TimeLeft(5.0, 0, 10) < 0);  // nothing done: no estimate
  CHECK(TimeLeft(5.0, 12, 10) == 0.0);
  CHECK(FormatDuration(44.6) == "45 s");
  CHECK(FormatDuration(200) == "3 min 20 s");
  CHECK(FormatDuration(7500) == "2 h 05 min");
  CHECK(FormatDuration(-1) == "?");
  Progress p("pretrain", 4, "epochs");
  const std::string line = p.Line(1, "loss 0.5");
  CHECK(line.find("pretrain: 1/4 epochs (25%)") == 0);
  CHECK(line.find("left; loss 0.5") != std::string::npos);
  Progress share("node-1: round 3 training", 1.0, "");
  CHECK(share.Line(0.45, "").find("node-1: round 3 training: 45% done, ") == 0);
}

TEST_CASE("a field's unit is read from its name") {
  CHECK(FieldUnit("channel.snr_db") == "dB");
  CHECK(FieldUnit("split.inference.deadline_ms") == "ms");
  CHECK(FieldUnit("uplink_airtime_s") == "s");
  CHECK(FieldUnit("kept_for_backward_kb_max") == "KiB");
  CHECK(FieldUnit("uplink_bytes") == "bytes");
  CHECK(FieldUnit("federation.selection").empty());
}

TEST_CASE("each mode's rows give its figures, and only the figures its rows have data for") {
  SUBCASE("federated over an ideal uplink: no channel, no OTA figures") {
    const auto k = Keys(RunFigures(FederatedRows(3, 0.2, 0, false), json()));
    for (const char* f : {"accuracy", "loss", "bytes", "time", "participation"}) CHECK_MESSAGE(Has(k, f), f);
    for (const char* f : {"channel_loss", "channel_nodes", "ota_error", "staleness", "memory"}) CHECK_MESSAGE(!Has(k, f), f);
  }
  SUBCASE("a lossy digital uplink: the channel by round and by node") {
    const auto figs = RunFigures(FederatedRows(3, 0.2, 4, false), json());
    const auto k = Keys(figs);
    for (const char* f : {"channel_loss", "channel_airtime", "channel_nodes", "channel_snr"}) CHECK_MESSAGE(Has(k, f), f);
    const Figure& loss = *std::find_if(figs.begin(), figs.end(), [](const Figure& f) { return f.key == "channel_loss"; });
    CHECK(loss.series[0].y == std::vector<double>{40.0, 40.0, 40.0});  // 4 of 10 packets per node
    const Figure& snr = *std::find_if(figs.begin(), figs.end(), [](const Figure& f) { return f.key == "channel_snr"; });
    CHECK(snr.series[0].x == std::vector<double>{0, 1, 2});
    CHECK(snr.series[0].y == std::vector<double>{5.0, 6.0, 7.0});
    // The report folds each row as it reads it and drops the lists: the same figures.
    auto trimmed = FederatedRows(3, 0.2, 4, false);
    LinkTotals link;
    for (auto& r : trimmed) FoldAndTrim(&r, &link);
    for (const auto& r : trimmed) CHECK_FALSE(r.contains("link_per_node"));
    const auto again = RunFigures(trimmed, json(), &link);
    REQUIRE(again.size() == figs.size());
    for (size_t i = 0; i < figs.size(); ++i) {
      CAPTURE(figs[i].key);
      CHECK(again[i].key == figs[i].key);
      REQUIRE(again[i].series.size() == figs[i].series.size());
      for (size_t j = 0; j < figs[i].series.size(); ++j) {
        CHECK(again[i].series[j].x == figs[i].series[j].x);
        const auto &ya = again[i].series[j].y, &yb = figs[i].series[j].y;  // gaps (NaN) where a row lacks the field
        REQUIRE(ya.size() == yb.size());
        for (size_t v = 0; v < ya.size(); ++v) CHECK(((std::isnan(ya[v]) && std::isnan(yb[v])) || ya[v] == yb[v]));
      }
    }
  }
  SUBCASE("digital OTA: the decoder's error on a log axis") {
    const auto figs = RunFigures(FederatedRows(2, 0.2, 0, true), json());
    const auto it = std::find_if(figs.begin(), figs.end(), [](const Figure& f) { return f.key == "ota_error"; });
    REQUIRE(it != figs.end());
    CHECK(it->log_y);
    CHECK(it->series[0].y[1] == doctest::Approx(0.005));
  }
  SUBCASE("split learning: one curve per width") {
    std::vector<json> rows;
    for (int r = 1; r <= 2; ++r)
      rows.push_back({{"round", r}, {"accuracy_by_width", {{"0.250", 0.5}, {"1.000", 0.7}}},
                      {"uplink_bottleneck_bytes_by_width", {{"0.250", 1e5}, {"1.000", 4e5}}}, {"uplink_bottleneck_bytes", 5e5}});
    CHECK(DetectRunMode(rows) == RunMode::kSplit);
    const auto figs = RunFigures(rows, json());
    REQUIRE(figs[0].key == "accuracy_by_width");
    REQUIRE(figs[0].series.size() == 2);
    CHECK(figs[0].series[1].label == "width 1.000");
    CHECK(Has(Keys(figs), "bytes_by_width"));
  }
  SUBCASE("GNN: traffic beside its analytic count, staleness") {
    std::vector<json> rows;
    for (int e = 1; e <= 3; ++e)
      rows.push_back({{"epoch", e}, {"train_accuracy", 0.3}, {"embedding_values", 12800}, {"embedding_analytic_values", 12800},
                      {"stale_share", 0.2}, {"max_staleness", 1}, {"epoch_s", 0.01}});
    CHECK(DetectRunMode(rows) == RunMode::kGnn);
    const auto figs = RunFigures(rows, json());
    const auto k = Keys(figs);
    CHECK(Has(k, "gnn_traffic"));
    CHECK(Has(k, "gnn_staleness"));
  }
}

TEST_CASE("split inference: inference.csv read back by its header, a curve per pass, the deadline from the summary") {
  const std::string d = Dir("infer");
  REQUIRE(WriteFileAtomic(d + "/inference.csv", "pass,controller,request,t_s,kbps,width,latency_ms\n"
                                                "1,adaptive,1,0,1000,1,20.5\n1,adaptive,2,0.1,40,0.5,45\n"
                                                "2,fixed,1,0,1000,1,20.5\n2,fixed,2,0.1,40,1,90.25\n2,fix").ok());
  auto rows = ReadCsvRows(d + "/inference.csv");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 4);  // the cut line is left out
  CHECK((*rows)[3]["latency_ms"] == 90.25);
  CHECK((*rows)[3]["controller"] == "fixed");
  const auto figs = InferenceFigures(rows.value(), json{{"inference", {{"deadline_ms", 60.0}}}});
  REQUIRE(figs.size() == 3);
  CHECK(figs[0].key == "inference_latency");
  REQUIRE(figs[0].series.size() == 3);  // two passes and the deadline
  CHECK(figs[0].series[1].label == "pass 2 (fixed)");
  CHECK(figs[0].series[1].y == std::vector<double>{20.5, 90.25});
  CHECK(figs[0].series[2].y == std::vector<double>{60.0, 60.0});
  CHECK(figs[1].series[0].y == std::vector<double>{1.0, 0.5});  // the widths the adaptive pass chose
  CHECK(!ReadCsvRows(d + "/none.csv").ok());
  fs::remove_all(d);
}

TEST_CASE("report.html: escaped text, a figure per plot, and a running run never shows an earlier run's summary") {
  const std::string d = Dir("page");
  WriteRows(d, FederatedRows(2, 0.2, 4, false), "{\"round\": 3, \"test_acc");  // a line cut by a crash
  REQUIRE(WriteFileAtomic(d + "/scenario.toml", "name = '<script>alert(1)</script>'\nseed = 1\n[model]\nname = 'cnn'\n").ok());
  CHECK(ScenarioNameOf(Slurp(d + "/scenario.toml")) == "<script>alert(1)</script>");
  CHECK(ScenarioNameOf("seed = 1\n[model]\nname = 'cnn'\n").empty());
  REQUIRE(WriteFileAtomic(d + "/summary.json", R"({"run_id": "old-run", "status": "complete"})").ok());
  REQUIRE(WriteReport(d, ReportState::kRunning).ok());
  std::string page = Slurp(d + "/report.html");
  CHECK(page.find("<script>alert(1)") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(page.find("old-run") == std::string::npos);
  CHECK(page.find("<td>running</td>") != std::string::npos);
  CHECK(page.find("<td>last round</td><td>2</td>") != std::string::npos);  // the cut line is not a row
  for (const char* f : {"accuracy", "channel_loss", "channel_nodes"}) {
    const size_t at = page.find(std::string("data-figure=\"") + f + "\">");
    REQUIRE_MESSAGE(at != std::string::npos, f);
    CHECK_MESSAGE(page.find("<svg", at) - at < 40, f);  // the figure holds its SVG inline
  }
  CHECK(page.find("id=\"accuracy-gnuplot_canvas\"") != std::string::npos);  // ids made unique per figure
  CHECK(page.find("src=\"http") == std::string::npos);
  REQUIRE(WriteReport(d, ReportState::kFinished).ok());
  CHECK(Slurp(d + "/report.html").find("old-run") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("compare: one line per run with its rows' figures; bad options and folders are named") {
  const std::string a = Dir("cmp-a"), b = Dir("cmp-b"), out = Dir("cmp-out");
  WriteRows(a, FederatedRows(3, 0.2, 0, false));  // accuracy 0.3, 0.5, 0.7
  WriteRows(b, FederatedRows(2, 0.1, 0, false));  // accuracy 0.2, 0.3
  REQUIRE(WriteFileAtomic(b + "/summary.json", R"({"status": "stopped", "wall_s": 9.5})").ok());
  CompareOptions o;
  o.runs = {a, b};
  o.labels = {"snr_db = 5 dB", "with \"quotes\""};
  o.out_dir = out;
  auto facts = WriteComparison(o);
  REQUIRE_MESSAGE(facts.ok(), facts.status().message());
  const std::string csv = Slurp(out + "/compare.csv");
  // rounds, final accuracy, best (round), wall (summary's when larger), virtual, MB up, MB down, failures, offline
  CHECK(csv.find("\"snr_db = 5 dB\",\"" + a + "\",\"?\",\"federated learning\",\"no summary (running or "
                 "interrupted)\",3,0.7000,0.7000,3,7.0,4.50,4.500,6.000,3,0\n") != std::string::npos);
  CHECK(csv.find("\"with \"\"quotes\"\"\",\"" + b + "\",\"?\",\"federated learning\",\"stopped\",2,"
                 "0.3000,0.3000,2,9.5,3.00,3.000,4.000,2,0\n") != std::string::npos);
  const std::string page = Slurp(out + "/compare.html");
  CHECK(page.find("data-figure=\"cmp_0\"") != std::string::npos);
  CHECK(page.find("with &quot;quotes&quot;") != std::string::npos);

  o.x = "minutes";
  CHECK(WriteComparison(o).status().message().find("--x = 'minutes': allowed round, elapsed_s, virtual_clock_s") == 0);
  o.x = "round";
  o.labels = {"one"};
  CHECK(WriteComparison(o).status().message().find("1 labels for 2 runs") != std::string::npos);
  o.labels.clear();
  o.runs = {a, out + "/none"};
  CHECK(WriteComparison(o).status().message().find(out + "/none") != std::string::npos);
  for (const auto& d : {a, b, out}) fs::remove_all(d);
}
