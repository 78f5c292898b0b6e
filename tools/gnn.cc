#include "tools/gnn.h"

#include "record/progress.h"
#include "record/run_record.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "gnn/gnn_model.h"
#include "gnn/gnn_report.h"
#include "gnn/graph.h"
#include "tools/launcher.h"

namespace edgebed {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Result<Graph> ScenarioGraph(const Scenario& sc) {
  const auto t0 = Clock::now();
  auto g = LoadGraph(sc.gnn, sc.data.dir);
  if (g.ok()) spdlog::info("graph: {} ({:.1f} s)", g->description, Since(t0));
  return g;
}
}  // namespace

int RunGnnReference(const Scenario& sc) {
  std::error_code ec;
  fs::create_directories(sc.output_dir + "/logs", ec);
  std::ofstream(sc.output_dir + "/scenario.toml") << sc.ToToml();
  SetGnnThreads(static_cast<int>(sc.gnn.threads));
  auto g = ScenarioGraph(sc);
  if (!g.ok()) {
    spdlog::error("{}", g.status().message());
    return 2;
  }
  GnnConfig cfg = sc.gnn;
  cfg.mode = "full";
  auto shard = GnnShard::Create(g.value(), cfg, 0);
  auto analytic = AnalyticCounts(g.value(), sc.gnn);
  if (!shard.ok() || !analytic.ok()) {
    spdlog::error("{}", (!shard.ok() ? shard.status() : analytic.status()).message());
    return 2;
  }
  GnnReport report(cfg, g.value(), analytic.value(), sc.output_dir);
  if (Status st = report.Open(); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  spdlog::info("gnn '{}': {} ({} parameters), {} epochs in this process", sc.name, shard.value()->Describe(),
               shard.value()->NumParameters(), cfg.epochs);
  const auto run_start = Clock::now();
  for (uint32_t e = 1; e <= cfg.epochs; ++e) {
    const auto t0 = Clock::now();
    ShardStats st;
    Status s = shard.value()->TrainEpoch(e, nullptr, {}, &st);
    if (s.ok() && (e % cfg.eval_every == 0 || e == cfg.epochs)) s = shard.value()->Evaluate(e, nullptr, &st);
    if (!s.ok()) {
      spdlog::error("epoch {}: {}", e, s.message());
      return 1;
    }
    if (Status w = report.AddEpoch(e, {st}, {ShardTraffic{}}, Since(t0)); !w.ok()) {
      spdlog::error("{}", w.message());
      return 1;
    }
    const auto& row = report.rows().back();
    if (e == 1 || e % 10 == 0 || e == cfg.epochs)
      spdlog::info("epoch {}/{}: train loss {:.4f}, val {}, test {} ({:.3f} s)", e, cfg.epochs, st.train_loss,
                   row["val_accuracy"].dump(), row["test_accuracy"].dump(), row["epoch_s"].get<double>());
  }
  json summary = report.Summary();
  summary["wall_s"] = Since(run_start);
  summary["run_id"] = sc.name + "-" + std::to_string(sc.seed);
  if (Status w = WriteSummaryFile(sc.output_dir, summary); !w.ok()) {
    spdlog::error("{}", w.message());
    return 1;
  }
  PlotMetrics(sc.output_dir, sc.name);
  spdlog::info("reference done: test accuracy {:.4f} at best validation (epoch {}), {} epochs to converge; outputs in {}",
               summary["test_accuracy"].get<double>(), summary["best_epoch"].get<uint32_t>(),
               summary["epochs_to_converge"].get<uint32_t>(), sc.output_dir);
  return 0;
}

int RunGnnGraphInfo(const Scenario& sc, const std::string& write_prefix) {
  auto g = ScenarioGraph(sc);
  if (!g.ok()) {
    spdlog::error("{}", g.status().message());
    return 2;
  }
  json info = {{"graph", g->description}, {"vertices", g->num_vertices()}, {"edges", g->num_edges()},
               {"homophily", g->EdgeHomophily()}, {"partitions", json::array()}};
  for (uint32_t k : {sc.gnn.parts, sc.gnn.chunks}) {
    for (const std::string method : {"bfs", "random"}) {
      Rng rng = MakeRng(sc.seed, "gnn-info");
      const auto t0 = Clock::now();
      auto part = PartitionGraph(g.value(), k, method, rng);
      if (!part.ok()) continue;
      const double secs = Since(t0);
      const uint64_t cut = EdgeCut(g.value(), part.value()), halo = HaloVertices(g.value(), part.value(), k);
      info["partitions"].push_back({{"parts", k}, {"method", method}, {"edge_cut", cut},
                                    {"cut_share", static_cast<double>(cut) / std::max<uint64_t>(1, g->num_edges())},
                                    {"halo_vertices", halo}, {"seconds", secs}});
      spdlog::info("{} parts, {}: edge cut {} ({:.1f}% of edges), halo {} vertices ({:.2f} s)", k, method, cut,
                   100.0 * cut / std::max<uint64_t>(1, g->num_edges()), halo, secs);
    }
  }
  std::cout << info.dump(2) << std::endl;
  if (!write_prefix.empty()) {
    if (Status st = WriteEdgeList(g.value(), write_prefix); !st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
    spdlog::info("wrote {0}.edges, {0}.labels, {0}.features", write_prefix);
  }
  return 0;
}

int RunGnnCompare(const Scenario& base, const GnnCompareOptions& opt, const std::string& exe) {
  std::error_code ec;
  fs::create_directories(opt.out, ec);
  json results = json::array();
  std::ofstream csv(opt.out + "/compare.csv");
  csv << "layers,mode,parts,chunks,test_accuracy,best_val_accuracy,epochs_to_converge,epochs,activation_values_per_epoch,"
         "analytic_activation_values,parameter_values_per_epoch,train_bytes_per_epoch,median_epoch_s,median_train_s,"
         "median_wait_share,stale_share,stale_rel_error\n";
  Progress progress("gnn compare", static_cast<double>(opt.layers.size() * opt.modes.size()), "runs done", 0.0,
                    /*live=*/false);  // a line per run
  double runs_done = 0;
  for (uint32_t layers : opt.layers) {
    for (const auto& mode : opt.modes) {
      Scenario sc = base;
      sc.gnn.layers = layers;
      sc.gnn.mode = mode;
      sc.nodes = sc.gnn.shards();
      sc.name = base.name + "-L" + std::to_string(layers) + "-" + mode;
      sc.output_dir = opt.out + "/L" + std::to_string(layers) + "-" + mode;
      progress.Update(runs_done++, fmt::format("next: {} layers, {}", layers, mode));
      const int rc = mode == "full" ? RunGnnReference(sc) : RunFederation(sc, exe);
      std::ifstream in(sc.output_dir + "/summary.json");
      if (rc != 0 || !in) {
        spdlog::error("{} layers, {}: the run failed (exit {}); see {}", layers, mode, rc, sc.output_dir);
        return rc ? rc : 1;
      }
      json s = json::parse(in);
      const auto& t = s["traffic"];
      const double analytic = t["embedding"]["analytic_values_per_epoch"].get<double>() +
                              t["gradient"]["analytic_values_per_epoch"].get<double>();
      csv << layers << ',' << mode << ',' << s["parts"] << ',' << s["chunks"] << ',' << s["test_accuracy"] << ','
          << s["best_val_accuracy"] << ',' << s["epochs_to_converge"] << ',' << s["epochs_completed"] << ','
          << s["activation_values_per_epoch"] << ',' << analytic << ',' << t["parameter"]["values_per_epoch"] << ','
          << s["train_bytes_per_epoch"] << ',' << s["median_epoch_s"] << ',' << s["median_train_s"] << ','
          << s["median_wait_share"] << ',' << s["stale_share"] << ',' << s["stale_rel_error"] << '\n';
      csv.flush();
      s["layers"] = layers;
      results.push_back(s);
    }
  }
  std::ofstream(opt.out + "/compare.json") << results.dump(2) << "\n";
  // The table, and per depth the graph-parallel / pipeline traffic ratio.
  std::ostringstream md;
  md << "| L | mode | test acc. | epochs to converge | activation values / epoch (measured) | analytic | parameter values / epoch | median epoch s | waiting share |\n"
     << "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : results) {
    const auto& t = s["traffic"];
    md << "| " << s["layers"] << " | " << s["mode"].get<std::string>() << " | "
       << fmt::format("{:.2f}%", 100 * s["test_accuracy"].get<double>()) << " | " << s["epochs_to_converge"] << " | "
       << fmt::format("{:.0f}", s["activation_values_per_epoch"].get<double>()) << " | "
       << fmt::format("{:.0f}", t["embedding"]["analytic_values_per_epoch"].get<double>() +
                                   t["gradient"]["analytic_values_per_epoch"].get<double>())
       << " | " << fmt::format("{:.0f}", t["parameter"]["values_per_epoch"].get<double>()) << " | "
       << fmt::format("{:.3f}", s["median_epoch_s"].get<double>()) << " | "
       << fmt::format("{:.0f}%", 100 * s.value("median_wait_share", 0.0)) << " |\n";
  }
  for (uint32_t layers : opt.layers) {
    const json* pipe = nullptr;
    const json* graph = nullptr;
    for (const auto& s : results) {
      if (s["layers"] != layers) continue;
      if (s["mode"] == "pipe") pipe = &s;
      if (s["mode"] == "graph") graph = &s;
    }
    if (pipe && graph) {
      const double a = (*graph)["activation_values_per_epoch"].get<double>() / (*pipe)["activation_values_per_epoch"].get<double>();
      const double b = (*graph)["train_bytes_per_epoch"].get<double>() / (*pipe)["train_bytes_per_epoch"].get<double>();
      const double t = (*graph)["median_epoch_s"].get<double>() / (*pipe)["median_epoch_s"].get<double>();
      md << "\nL = " << layers << ": graph parallelism / GNNPipe activation values " << fmt::format("{:.2f}x", a)
         << ", all training bytes (with the gradient all-reduce) " << fmt::format("{:.2f}x", b)
         << ", median epoch time " << fmt::format("{:.2f}x", t) << "\n";
    }
  }
  std::ofstream(opt.out + "/compare.md") << md.str();
  std::cout << md.str();
  spdlog::info("compare: {0}/compare.csv, {0}/compare.json, {0}/compare.md", opt.out);
  return 0;
}

}  // namespace edgebed
