// gnn/: graphs, partitions, and the three layouts of one network checked against each other
// in-process (the pipeline stages and graph partitions run in threads over an in-memory transport;
// tests/e2e runs them as processes over ZeroMQ).
#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "gnn/gnn_model.h"
#include "gnn/gnn_report.h"
#include "gnn/gnn_wire.h"
#include "gnn/graph.h"
#include "tests/gnn/gnn_harness.h"

using namespace edgebed;
using namespace edgebed::gnn_test;
namespace fs = std::filesystem;

namespace {

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

TEST_CASE("MakeGraph keeps one undirected edge per pair, no self loops, sorted neighbours") {
  Graph g = MakeGraph(4, {{0, 1}, {1, 0}, {2, 2}, {3, 1}, {0, 1}, {2, 3}});
  CHECK(g.num_vertices() == 4);
  CHECK(g.num_edges() == 3);  // 0-1, 1-3, 2-3
  CHECK(g.offsets == std::vector<uint64_t>{0, 1, 3, 4, 6});
  CHECK(g.targets == std::vector<uint32_t>{1, 0, 3, 3, 1, 2});
}

TEST_CASE("CSBM: expected degree and homophily as configured; feature-only Bayes accuracy matches the closed form") {
  GraphConfig c;
  c.vertices = 6000;
  c.classes = 4;
  c.features = 8;
  c.avg_degree = 12.0;
  c.homophily = 0.8;
  Rng rng = MakeRng(3, "t");
  auto g = MakeCsbm(c, rng);
  REQUIRE(g.ok());
  const double deg = 2.0 * g->num_edges() / g->num_vertices();
  CHECK(deg == doctest::Approx(12.0).epsilon(0.05));
  CHECK(g->EdgeHomophily() == doctest::Approx(0.8).epsilon(0.03));
  std::vector<int> count(4, 0);
  for (auto y : g->labels) ++count[y];
  for (int k : count) CHECK(k == 1500);
  // Two classes: x_1 - x_2 ~ N(+-s, 2), so the Bayes-optimal accuracy is Phi(s / sqrt 2).
  for (double s : {0.5, 1.0, 2.0}) CHECK(CsbmFeatureBayesAccuracy(2, s) == doctest::Approx(NormalCdf(s / std::sqrt(2.0))).epsilon(1e-4));
  CHECK(CsbmFeatureBayesAccuracy(10, 0.0) == doctest::Approx(0.1).epsilon(1e-3));  // chance
  // The empirical accuracy of the Bayes rule (argmax of x) agrees with the formula.
  size_t right = 0;
  for (uint32_t v = 0; v < g->num_vertices(); ++v) {
    const float* x = &g->features[v * 8];
    right += std::max_element(x, x + 4) - x == g->labels[v];
  }
  CHECK(static_cast<double>(right) / g->num_vertices() == doctest::Approx(g->feature_bayes_accuracy).epsilon(0.05));
}

TEST_CASE("an edge list written by WriteEdgeList reads back to the same graph; bad lines are named") {
  GnnConfig c = SmallConfig("full", 1, 1);
  Graph g = SmallGraph(c);
  const std::string prefix = (fs::temp_directory_path() / ("edgebed-gnn-" + std::to_string(getpid()))).string();
  REQUIRE(WriteEdgeList(g, prefix).ok());
  GraphConfig e;
  e.kind = "edgelist";
  e.edges = prefix + ".edges";
  e.labels = prefix + ".labels";
  e.features_file = prefix + ".features";
  Rng rng = MakeRng(1, "t");
  auto r = ReadEdgeList(e, rng);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->offsets == g.offsets);
  CHECK(r->targets == g.targets);
  CHECK(r->labels == g.labels);
  REQUIRE(r->features.size() == g.features.size());
  for (size_t i = 0; i < g.features.size(); i += 97) CHECK(r->features[i] == doctest::Approx(g.features[i]).epsilon(1e-4));
  e.features_file.clear();  // without features: a sketch of the adjacency, F wide
  e.features = 5;
  auto s = ReadEdgeList(e, rng);
  REQUIRE(s.ok());
  CHECK(s->feature_dim == 5);
  { std::ofstream(prefix + ".edges", std::ios::app) << "3 x\n"; }
  auto bad = ReadEdgeList(e, rng);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("gnn.graph.edges: line") != std::string::npos);
  CHECK(bad.status().message().find("'3 x'") != std::string::npos);
  for (const char* ext : {".edges", ".labels", ".features"}) fs::remove(prefix + ext);
}

TEST_CASE("the BFS-grown partition is balanced and cuts far fewer edges than a random one") {
  // A 30 x 30 grid: four parts can be cut along 2 x 30 edges; a random assignment cuts ~3/4 of 1740.
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t r = 0; r < 30; ++r)
    for (uint32_t c = 0; c < 30; ++c) {
      if (c + 1 < 30) edges.emplace_back(r * 30 + c, r * 30 + c + 1);
      if (r + 1 < 30) edges.emplace_back(r * 30 + c, (r + 1) * 30 + c);
    }
  Graph g = MakeGraph(900, edges);
  Rng rng = MakeRng(1, "t");
  auto bfs = PartitionGraph(g, 4, "bfs", rng);
  auto rnd = PartitionGraph(g, 4, "random", rng);
  REQUIRE(bfs.ok());
  REQUIRE(rnd.ok());
  const auto members = PartMembers(bfs.value(), 4);
  for (const auto& m : members) CHECK(std::abs(static_cast<int>(m.size()) - 225) <= 5);
  const uint64_t cut_bfs = EdgeCut(g, bfs.value()), cut_rnd = EdgeCut(g, rnd.value());
  MESSAGE("grid 30x30, 4 parts: bfs cut ", cut_bfs, ", random cut ", cut_rnd);
  CHECK(cut_bfs < 150);
  CHECK(cut_rnd > 1000);
  // The halo count by brute force: (vertex, part) pairs where a vertex outside the part touches it.
  uint64_t halo = 0;
  for (uint32_t p = 0; p < 4; ++p)
    for (uint32_t u = 0; u < 900; ++u) {
      if (bfs.value()[u] == p) continue;
      bool touches = false;
      for (uint64_t e = g.offsets[u]; e < g.offsets[u + 1]; ++e) touches |= bfs.value()[g.targets[e]] == p;
      halo += touches;
    }
  CHECK(HaloVertices(g, bfs.value(), 4) == halo);
  CHECK(!PartitionGraph(g, 0, "bfs", rng).ok());
  CHECK(!PartitionGraph(g, 4, "metis", rng).ok());
}

TEST_CASE("a one-chunk pipeline trains exactly the reference network; graph parallelism agrees to rounding") {
  const GnnConfig full = SmallConfig("full", 1, 1);
  Graph g = SmallGraph(full);
  const Trained ref = Train(g, full, 3);
  const Trained pipe = Train(g, SmallConfig("pipe", 2, 1), 3);
  REQUIRE(pipe.params.size() == ref.params.size());
  CHECK(pipe.params == ref.params);  // bit for bit
  CHECK(pipe.last[1].train_loss == ref.last[0].train_loss);
  // Traffic: (P-1) N d embeddings and as many gradients.
  CHECK(pipe.values[0] == 600u * 16u);
  CHECK(pipe.values[1] == 600u * 16u);
  CHECK(pipe.values[2] == 0u);

  const GnnConfig gcfg = SmallConfig("graph", 3, 1);
  const Trained graph = Train(g, gcfg, 3);
  // Each partition holds the whole network; all three stay identical, and close to the reference.
  const size_t n = ref.params.size();
  REQUIRE(graph.params.size() == 3 * n);
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    CHECK(graph.params[i] == graph.params[n + i]);
    CHECK(graph.params[i] == graph.params[2 * n + i]);
    worst = std::max(worst, static_cast<double>(std::abs(graph.params[i] - ref.params[i])));
  }
  MESSAGE("graph parallelism vs reference after 3 epochs: max |parameter difference| = ", worst);
  CHECK(worst < 2.5e-7);  // measured 6e-8: float32 sums in another order, within 2 ulps of values near 1
  CHECK(graph.last[0].train_loss + graph.last[1].train_loss + graph.last[2].train_loss ==
        doctest::Approx(ref.last[0].train_loss).epsilon(1e-5));
  auto analytic = AnalyticCounts(g, gcfg);
  REQUIRE(analytic.ok());
  CHECK(graph.values[0] == analytic->graph_embedding);  // 2 L |halo| d in all, half each way
  CHECK(graph.values[1] == analytic->graph_gradient);
  CHECK(graph.values[2] == analytic->graph_parameter);
}

TEST_CASE("hybrid: 2 stages x 2 partitions train the reference network to rounding; traffic is the analytic count") {
  const GnnConfig full = SmallConfig("full", 1, 1);
  Graph g = SmallGraph(full);
  const Trained ref = Train(g, full, 3);
  GnnConfig cfg = SmallConfig("hybrid", 2, 1);
  cfg.partitions = 2;
  REQUIRE(cfg.shards() == 4);
  const Trained hybrid = Train(g, cfg, 3);
  // Shards 0, 1: stage 0 (input + layers 1-2) of partitions 0, 1; shards 2, 3: stage 1 (layers 3-4 + output).
  auto s00 = GnnShard::Create(g, cfg, 0), s10 = GnnShard::Create(g, cfg, 2);
  REQUIRE(s00.ok());
  REQUIRE(s10.ok());
  const size_t n0 = s00.value()->NumParameters(), n1 = s10.value()->NumParameters();
  REQUIRE(n0 + n1 == ref.params.size());
  REQUIRE(hybrid.params.size() == 2 * (n0 + n1));
  double worst = 0.0;
  for (size_t i = 0; i < n0; ++i) {
    CHECK(hybrid.params[i] == hybrid.params[n0 + i]);  // both partitions of stage 0 agree
    worst = std::max(worst, static_cast<double>(std::abs(hybrid.params[i] - ref.params[i])));
  }
  for (size_t i = 0; i < n1; ++i) {
    CHECK(hybrid.params[2 * n0 + i] == hybrid.params[2 * n0 + n1 + i]);
    worst = std::max(worst, static_cast<double>(std::abs(hybrid.params[2 * n0 + i] - ref.params[n0 + i])));
  }
  MESSAGE("hybrid vs reference after 3 epochs: max |parameter difference| = ", worst);
  CHECK(worst < 2.5e-7);  // measured 6e-8: float32 sums in another order, within 2 ulps of values near 1
  auto analytic = AnalyticCounts(g, cfg);
  REQUIRE(analytic.ok());
  CHECK(analytic->hybrid_halo > 0);
  CHECK(hybrid.values[0] == analytic->hybrid_embedding);  // (P-1) N d + L |halo| d
  CHECK(hybrid.values[1] == analytic->hybrid_gradient);
  CHECK(hybrid.values[2] == analytic->hybrid_parameter);  // Q (Q-1) |theta|
}

TEST_CASE("pipeline chunks read historical embeddings: stale rows differ from the fresh ones, staleness is one epoch") {
  GnnConfig cfg = SmallConfig("pipe", 1, 4);  // one stage: no transport, the chunks still stream
  Graph g = SmallGraph(cfg);
  auto shard = GnnShard::Create(g, cfg, 0);
  REQUIRE(shard.ok());
  auto chunk_of = LayoutPartition(g, cfg);
  REQUIRE(chunk_of.ok());
  // A vertex of the last chunk that a vertex of chunk 0 neighbours: chunk 0 reads it stale.
  int64_t v_stale = -1;
  for (uint32_t v = 0; v < g.num_vertices() && v_stale < 0; ++v)
    if (chunk_of.value()[v] == 0)
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e)
        if (chunk_of.value()[g.targets[e]] == 3) v_stale = g.targets[e];
  REQUIRE(v_stale >= 0);
  ShardStats s1, s2;
  REQUIRE(shard.value()->TrainEpoch(1, nullptr, {}, &s1).ok());
  const std::vector<float> before = shard.value()->TableRow(1, static_cast<uint32_t>(v_stale));  // what chunk 0 reads in epoch 2
  REQUIRE(shard.value()->TrainEpoch(2, nullptr, {}, &s2).ok());
  const std::vector<float> after = shard.value()->TableRow(1, static_cast<uint32_t>(v_stale));   // chunk 3's fresh value
  REQUIRE(before.size() == 16u);
  CHECK(before != after);
  CHECK(s2.stale_reads > 0);
  CHECK(s2.fresh_reads > 0);
  CHECK(s2.max_staleness == 1);
  CHECK(s2.stale_diff_sq > 0.0);
  const double rel = std::sqrt(s2.stale_diff_sq / s2.stale_norm_sq);
  MESSAGE("epoch 2: ", s2.stale_reads, " historical and ", s2.fresh_reads, " fresh neighbour reads; relative error of the historical rows ", rel);
  CHECK(rel > 1e-4);
  // With chunks the trained network differs from the reference (the history is used).
  const Trained ref = Train(g, SmallConfig("full", 1, 1), 2);
  CHECK(shard.value()->Parameters() != ref.params);
}

TEST_CASE("a shard refuses a peer tensor of the wrong shape; the wire refuses bad kinds, senders and sizes") {
  GnnConfig cfg = SmallConfig("pipe", 2, 2);
  Graph g = SmallGraph(cfg);
  auto stage1 = GnnShard::Create(g, cfg, 1);
  REQUIRE(stage1.ok());
  class Wrong : public PeerTransport {
   public:
    Status Send(uint32_t, const PeerTensor&) override { return Status::Ok(); }
    Status Receive(uint32_t from, TensorKind kind, uint32_t epoch, uint32_t step, PeerTensor* out) override {
      out->kind = kind, out->epoch = epoch, out->step = step, out->from = from;
      out->rows = 3, out->dim = 16, out->values.assign(48, 0.0f);
      return Status::Ok();
    }
  } wrong;
  ShardStats st;
  Status s = stage1.value()->TrainEpoch(1, &wrong, {}, &st);
  REQUIRE(!s.ok());
  CHECK(s.message().find("embeddings from shard 0 is 3 x 16") != std::string::npos);

  PeerTensor t;
  t.kind = TensorKind::kGradient;
  t.rows = 2, t.dim = 3, t.values = {1, 2, 3, 4, 5, 6};
  t.from = 1;
  wire::GnnTensor w;
  ToWire(t, &w);
  PeerTensor back;
  REQUIRE(FromWire(w, 2, &back).ok());
  CHECK(back.values == t.values);
  CHECK(!FromWire(w, 1, &back).ok());  // from 1 with one shard
  w.set_rows(3);
  CHECK(FromWire(w, 2, &back).message().find("gnn_tensor.values") != std::string::npos);
  w.set_rows(2);
  w.set_kind(9);
  CHECK(FromWire(w, 2, &back).message().find("gnn_tensor.kind") != std::string::npos);
}
