// GraphSAGE layers through every layout, and the kNN graph over Fashion-MNIST against a brute-force
// nearest-neighbour search written here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "gnn/gnn_model.h"
#include "gnn/graph.h"
#include "tests/gnn/gnn_harness.h"

using namespace edgebed;
using namespace edgebed::gnn_test;

TEST_CASE("SAGE layers: a one-chunk pipeline trains exactly the full network, graph parallelism to rounding, and it learns") {
  GnnConfig full = SmallConfig("full", 1, 1);
  full.layer = "sage";
  const Graph g = SmallGraph(full);
  const Trained first = Train(g, full, 1);
  const Trained ref = Train(g, full, 3);
  GnnConfig pipe = SmallConfig("pipe", 2, 1);
  pipe.layer = "sage";
  const Trained p = Train(g, pipe, 3);
  REQUIRE(p.params.size() == ref.params.size());
  CHECK(p.params == ref.params);  // bit for bit
  GnnConfig graph = SmallConfig("graph", 2, 1);
  graph.layer = "sage";
  const Trained gp = Train(g, graph, 3);
  const size_t n = ref.params.size();
  REQUIRE(gp.params.size() == 2 * n);
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, static_cast<double>(std::fabs(gp.params[i] - ref.params[i])));
  MESSAGE("SAGE, graph parallelism vs reference after 3 epochs: max |parameter difference| = ", worst);
  CHECK(worst < 2.5e-7);  // measured 6e-8: float32 sums in another order, within 2 ulps of values near 1
  // 30 epochs of Adam lower the training loss well below the first epoch's.
  const Trained later = Train(g, full, 30);
  MESSAGE("SAGE training loss: epoch 1 ", first.last[0].train_loss, ", epoch 30 ", later.last[0].train_loss);
  CHECK(later.last[0].train_loss < 0.7 * first.last[0].train_loss);
}

TEST_CASE("the kNN graph: each image linked to its k most cosine-similar images (brute force), undirected, homophilous") {
  GnnConfig c;
  c.graph.kind = "knn";
  c.graph.vertices = 400;
  c.graph.knn_k = 5;
  c.seed = 11;
  auto loaded = LoadGraph(c, "");
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
  const Graph& g = loaded.value();
  REQUIRE(g.num_vertices() == 400);
  REQUIRE(g.feature_dim == 784);
  CHECK(g.num_classes == 10);
  const auto [lo, hi] = std::minmax_element(g.features.begin(), g.features.end());
  CHECK(*lo >= 0.0f);  // pixels / 255
  CHECK(*hi <= 1.0f);
  const uint32_t n = g.num_vertices(), d = g.feature_dim, k = c.graph.knn_k;
  auto neighbours = [&](uint32_t v) {
    return std::vector<uint32_t>(g.targets.begin() + static_cast<std::ptrdiff_t>(g.offsets[v]),
                                 g.targets.begin() + static_cast<std::ptrdiff_t>(g.offsets[v + 1]));
  };
  std::vector<double> norm(n, 0.0);
  for (uint32_t v = 0; v < n; ++v)
    for (uint32_t j = 0; j < d; ++j) norm[v] += static_cast<double>(g.features[v * d + j]) * g.features[v * d + j];
  for (uint32_t v = 0; v < n; ++v) {
    const auto nb = neighbours(v);
    REQUIRE(nb.size() >= k);  // its own k, plus those that chose it
    CHECK(std::find(nb.begin(), nb.end(), v) == nb.end());
    for (uint32_t u : nb) {  // undirected
      const auto back = neighbours(u);
      REQUIRE(std::find(back.begin(), back.end(), v) != back.end());
    }
    // Brute force: the k images most cosine-similar to v must all be its neighbours.
    std::vector<std::pair<double, uint32_t>> sim;
    for (uint32_t u = 0; u < n; ++u) {
      if (u == v) continue;
      double dot = 0.0;
      for (uint32_t j = 0; j < d; ++j) dot += static_cast<double>(g.features[v * d + j]) * g.features[u * d + j];
      sim.push_back({dot / std::sqrt(norm[v] * norm[u] + 1e-30), u});
    }
    std::partial_sort(sim.begin(), sim.begin() + k + 1, sim.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (uint32_t i = 0; i < k; ++i) {
      if (sim[i].first - sim[k].first < 1e-6) continue;  // a tie at the k-th place may go either way
      INFO("vertex " << v << ": its " << i + 1 << "-th most similar image " << sim[i].second << " is not a neighbour");
      CHECK(std::find(nb.begin(), nb.end(), sim[i].second) != nb.end());
    }
  }
  // Fashion-MNIST's nearest neighbours in pixel space mostly share the label (a 5-NN classifier on
  // raw pixels is about 85% right); random edges would agree 10% of the time.
  MESSAGE("kNN graph edge homophily: ", g.EdgeHomophily());
  CHECK(g.EdgeHomophily() > 0.5);
}
