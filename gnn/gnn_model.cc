// The full-graph reference layout, the shard factory, the kNN graph: gnn/'s first libtorch
// translation unit (the pipe and graph layouts are in gnn_shards.cc, what they share in gnn_shard_base.h).
#include "gnn/gnn_model.h"

#include "gnn/gnn_shard_base.h"
#include "splitnets/dataset.h"
#include "splitnets/learner.h"

namespace edgebed {
namespace {
using namespace gnn_detail;

// ---- full: the reference ---------------------------------------------------------------------
class FullShard : public ShardBase {
 public:
  FullShard(const Graph& g, const GnnConfig& cfg) : ShardBase(g, cfg) {
    all_ = AllVertices(g);
    adj_ = AdjacencyRows(g, cfg.layer, all_, [](uint32_t u) { return static_cast<int64_t>(u); }, g.num_vertices());
    x_ = Features(all_);
    BuildLayers(0, cfg.layers, true, true);
  }
  Status TrainEpoch(uint32_t, PeerTransport*, const std::function<void(double)>& progress, ShardStats* st) override {
    const auto t0 = Clock::now();
    opt_->zero_grad();
    torch::Tensor loss = TrainLoss(Forward(), all_, st);
    st->train_loss += loss.item<double>();
    loss.backward();
    opt_->step();
    if (progress) progress(1.0);
    st->train_s += Since(t0);
    return Status::Ok();
  }
  Status Evaluate(uint32_t, PeerTransport*, ShardStats* st) override {
    const auto t0 = Clock::now();
    torch::NoGradGuard ng;
    Score(Forward(), all_, st);
    st->eval_s += Since(t0);
    return Status::Ok();
  }
  std::string Describe() const override { return "full graph, " + std::to_string(cfg_.layers) + " layers (reference)"; }

 private:
  torch::Tensor Forward() {
    torch::Tensor h = InputLayer(input_, x_);
    for (const auto& p : layers_) h = GnnLayer(p, adj_, h, h);
    return OutputLayer(output_, h);
  }
  std::vector<uint32_t> all_;
  torch::Tensor adj_, x_;
};

}  // namespace

const char* TensorKindName(TensorKind k) {
  switch (k) {
    case TensorKind::kEmbedding: return "embedding";
    case TensorKind::kGradient: return "gradient";
    case TensorKind::kParameter: return "parameter";
    case TensorKind::kEval: return "eval";
  }
  return "?";
}

void SetGnnThreads(int n) {
  if (n > 0) torch::set_num_threads(n);
  // One BLAS thread in every GNN process, whatever n: the BLAS thread count changes a GEMM's digits,
  // and the full-graph reference must match the shards' to the bit (libtorch's own threads do not
  // change them).
  SetBlasThreads(1);
}

Result<std::vector<uint32_t>> LayoutPartition(const Graph& g, const GnnConfig& cfg) {
  const bool pipe = cfg.mode == "pipe";
  Rng rng = MakeRng(cfg.seed, pipe ? "gnn-chunks" : "gnn-parts");
  const uint32_t k = pipe ? cfg.chunks : cfg.mode == "graph" ? cfg.parts : cfg.mode == "hybrid" ? cfg.partitions : 1;
  if (k == 1) return std::vector<uint32_t>(g.num_vertices(), 0);
  return PartitionGraph(g, k, cfg.partitioner, rng);
}

Result<std::unique_ptr<GnnShard>> GnnShard::Create(const Graph& g, const GnnConfig& cfg, uint32_t index) {
  if (cfg.layers == 0 || cfg.hidden == 0) return Status::InvalidArgument("gnn.layers and gnn.hidden must be >= 1");
  if (g.num_vertices() == 0 || g.num_classes < 2) return Status::InvalidArgument("the graph has no vertices or fewer than 2 classes");
  if (cfg.mode == "full") return std::unique_ptr<GnnShard>(new FullShard(g, cfg));
  if (index >= cfg.shards())
    return Status::InvalidArgument("shard index " + std::to_string(index) + " outside the " + std::to_string(cfg.shards()) +
                                   " shards of gnn.mode = " + cfg.mode);
  auto part = LayoutPartition(g, cfg);
  if (!part.ok()) return part.status();
  if (cfg.mode == "pipe") {
    if (cfg.parts > cfg.layers)
      return Status::InvalidArgument("gnn.parts = " + std::to_string(cfg.parts) + " stages for gnn.layers = " +
                                     std::to_string(cfg.layers) + ": each stage needs a layer");
    return MakePipeStage(g, cfg, index, part.value());
  }
  if (cfg.mode == "graph") return MakeGraphShard(g, cfg, index, part.value());
  if (cfg.mode == "hybrid") {
    if (cfg.parts > cfg.layers || cfg.partitions == 0)
      return Status::InvalidArgument("gnn.parts = " + std::to_string(cfg.parts) + " stages for gnn.layers = " +
                                     std::to_string(cfg.layers) + " and gnn.partitions = " + std::to_string(cfg.partitions) +
                                     ": each stage needs a layer and a partition");
    return MakeGraphShard(g, cfg, index, part.value());
  }
  return Status::InvalidArgument("gnn.mode = '" + cfg.mode + "': allowed full, pipe, graph, hybrid");
}

uint64_t GnnParameterCount(const GnnConfig& cfg, uint32_t feature_dim, uint32_t classes) {
  const uint64_t d = cfg.hidden;
  const uint64_t layer = (cfg.layer == "sage" ? 2 : 1) * d * d + 3 * d;
  return feature_dim * d + d + cfg.layers * layer + d * classes + classes;
}

Result<Graph> MakeKnnGraph(const GraphConfig& c, const std::string& data_dir, Rng& rng) {
  auto data = LoadFashionMnist(data_dir.empty() ? DefaultFashionMnistDir() : data_dir, true);
  if (!data.ok()) return data.status();
  const Dataset& d = data.value();
  if (c.vertices < c.knn_k + 1 || c.vertices > d.size())
    return Status::InvalidArgument("gnn.graph.vertices = " + std::to_string(c.vertices) + " for knn: allowed " +
                                   std::to_string(c.knn_k + 1) + ".." + std::to_string(d.size()) + " (Fashion-MNIST training images)");
  std::vector<uint32_t> pick(d.size());
  std::iota(pick.begin(), pick.end(), 0u);
  std::shuffle(pick.begin(), pick.end(), rng);
  pick.resize(c.vertices);
  const int64_t n = c.vertices, f = static_cast<int64_t>(d.rows) * d.cols;
  std::vector<float> feats(static_cast<size_t>(n * f));
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < f; ++j) feats[i * f + j] = d.images[static_cast<size_t>(pick[i]) * f + j] / 255.0f;
    labels[i] = d.labels[pick[i]];
  }
  torch::NoGradGuard ng;
  torch::Tensor x = torch::from_blob(feats.data(), {n, f}, torch::kFloat32);
  torch::Tensor xn = x / x.norm(2, 1, true).clamp_min(1e-6);
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (int64_t r0 = 0; r0 < n; r0 += 1024) {
    const int64_t rows = std::min<int64_t>(1024, n - r0);
    torch::Tensor sim = xn.narrow(0, r0, rows).mm(xn.t());
    sim.index_put_({torch::arange(rows), torch::arange(r0, r0 + rows)}, -2.0f);  // not itself
    torch::Tensor nn = std::get<1>(sim.topk(c.knn_k, 1));
    auto a = nn.accessor<int64_t, 2>();
    for (int64_t i = 0; i < rows; ++i)
      for (uint32_t k = 0; k < c.knn_k; ++k) edges.emplace_back(static_cast<uint32_t>(r0 + i), static_cast<uint32_t>(a[i][k]));
  }
  Graph g = MakeGraph(static_cast<uint32_t>(n), std::move(edges));
  g.features = std::move(feats);
  g.feature_dim = static_cast<uint32_t>(f);
  g.labels = std::move(labels);
  g.num_classes = 10;
  g.description = "knn over " + std::to_string(n) + " Fashion-MNIST images: k = " + std::to_string(c.knn_k) + ", " +
                  std::to_string(g.num_edges()) + " edges, homophily " + std::to_string(g.EdgeHomophily()).substr(0, 5);
  return g;
}

}  // namespace edgebed
