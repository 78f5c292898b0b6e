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
#include "gnn/virtual_link.h"
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
    VirtualClock clock(cfg.link());  // one device: its compute alone
    Status s = shard.value()->TrainEpoch(e, nullptr, {}, &st);
    st.virtual_train_s = clock.Now();
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

}  // namespace edgebed
