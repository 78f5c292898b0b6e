// The GNN layers themselves (libtorch; gnn/gnn_shard_base.h): the normalised adjacency against a
// dense one built here from the edge list (GCN: D^-1/2 (A + I) D^-1/2, SAGE: D^-1 A), and the GCN and
// SAGE layers' gradients, every parameter and the input, against central finite differences in
// double precision: the difference quotient's own error at h = 1e-6 is about h^2 times the third
// derivative plus 1e-16 / h of rounding; measured 2.8e-9 (GCN) and 3.3e-9 (SAGE), bound 2e-8.
#include <doctest/doctest.h>

#include <cmath>

#include "gnn/gnn_shard_base.h"
#include "tests/gnn/gnn_harness.h"

using namespace edgebed;
using namespace edgebed::gnn_detail;

namespace {

GnnConfig TinyConfig(const std::string& layer) {
  GnnConfig c = gnn_test::SmallConfig("full", 1, 1);
  c.graph.vertices = 24;
  c.graph.avg_degree = 4.0;
  c.layer = layer;
  c.hidden = 5;
  return c;
}

// The dense normalised adjacency from the CSR arrays alone.
torch::Tensor DenseAdjacency(const Graph& g, const std::string& layer) {
  const int64_t n = g.num_vertices();
  torch::Tensor a = torch::zeros({n, n}, torch::kDouble);
  auto acc = a.accessor<double, 2>();
  for (int64_t v = 0; v < n; ++v)
    for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) acc[v][g.targets[e]] = 1.0;
  const torch::Tensor deg = a.sum(1);
  if (layer == "sage") return a / deg.clamp_min(1.0).unsqueeze(1);
  a = a + torch::eye(n, torch::kDouble);
  const torch::Tensor d = (deg + 1.0).pow(-0.5);
  return d.unsqueeze(1) * a * d.unsqueeze(0);
}

}  // namespace

TEST_CASE("the normalised adjacency: GCN's D^-1/2 (A + I) D^-1/2 and SAGE's D^-1 A, as dense matrices from the edges") {
  for (const std::string layer : {"gcn", "sage"}) {
    CAPTURE(layer);
    const GnnConfig cfg = TinyConfig(layer);
    const Graph g = gnn_test::SmallGraph(cfg);
    std::vector<uint32_t> rows(g.num_vertices());
    std::iota(rows.begin(), rows.end(), 0u);
    const torch::Tensor sparse =
        AdjacencyRows(g, layer, rows, [](uint32_t u) { return static_cast<int64_t>(u); }, g.num_vertices());
    const torch::Tensor got = sparse.to_dense().to(torch::kDouble), want = DenseAdjacency(g, layer);
    CHECK(torch::allclose(got, want, /*rtol=*/1e-6, /*atol=*/1e-7));
    if (layer == "sage") CHECK(torch::allclose(got.sum(1), torch::ones({g.num_vertices()}, torch::kDouble)));
  }
}

TEST_CASE("GCN and SAGE layers: autograd's gradients equal central finite differences, parameters and input") {
  torch::manual_seed(3);
  for (const std::string layer : {"gcn", "sage"}) {
    CAPTURE(layer);
    const GnnConfig cfg = TinyConfig(layer);
    const Graph g = gnn_test::SmallGraph(cfg);
    const int64_t n = g.num_vertices(), d = cfg.hidden;
    std::vector<uint32_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0u);
    const torch::Tensor adj =
        AdjacencyRows(g, layer, rows, [](uint32_t u) { return static_cast<int64_t>(u); }, n).to(torch::kDouble);
    LayerParams p = MakeLayer(cfg, 1, d, d, /*gnn=*/true);
    CHECK(p.s.defined() == (layer == "sage"));
    // The same layer in double precision, with non-trivial LayerNorm parameters.
    for (torch::Tensor* t : {&p.w, &p.s, &p.b, &p.gamma, &p.beta})
      if (t->defined()) *t = (t->detach().to(torch::kDouble) + 0.1 * torch::randn(t->sizes(), torch::kDouble)).requires_grad_(true);
    torch::Tensor x = torch::randn({n, d}, torch::kDouble).requires_grad_(true);
    const torch::Tensor r = torch::randn({n, d}, torch::kDouble);  // loss = sum(layer(x) * r)
    auto loss = [&] { return (GnnLayer(p, adj, x, x) * r).sum(); };
    loss().backward();
    std::vector<torch::Tensor*> checked = {&x};
    for (torch::Tensor* t : {&p.w, &p.s, &p.b, &p.gamma, &p.beta})
      if (t->defined()) checked.push_back(t);
    double worst = 0.0;
    for (torch::Tensor* t : checked) {
      const torch::Tensor grad = t->grad().clone();
      torch::NoGradGuard no_grad;
      auto flat = t->view({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) {
        const double h = 1e-6, keep = flat[i].item<double>();
        flat[i].fill_(keep + h);
        const double up = loss().item<double>();
        flat[i].fill_(keep - h);
        const double down = loss().item<double>();
        flat[i].fill_(keep);
        const double fd = (up - down) / (2 * h), ad = grad.view({-1})[i].item<double>();
        worst = std::max(worst, std::fabs(fd - ad) / std::max(1.0, std::fabs(ad)));
      }
    }
    MESSAGE(layer, ": worst relative gradient error ", worst);
    CHECK(worst < 2e-8);
  }
}
