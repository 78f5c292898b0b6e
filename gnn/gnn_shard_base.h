// What the GNN layouts share (private to gnn/, libtorch): the layers (each drawn from its own
// seeded generator), the normalised adjacency, peer tensors to and from libtorch, and ShardBase (the
// graph's tensors, labels and splits, the parameters a shard owns and its optimiser). The layouts:
// full (gnn_model.cc), pipe and graph/hybrid (gnn_shards.cc).
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "gnn/gnn_model.h"
#include "splitnets/optimizer_state.h"

namespace edgebed::gnn_detail {


using Clock = std::chrono::steady_clock;
inline double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline torch::Tensor Index(const std::vector<uint32_t>& v) {
  std::vector<int64_t> w(v.begin(), v.end());
  return torch::tensor(w, torch::kInt64);
}

// Parameters of one layer; layer 0 is the input layer, 1..L the GNN layers, L+1 the output layer.
// Each is drawn from its own seeded generator, so any process can build any layer identically.
struct LayerParams {
  torch::Tensor w, s, b, gamma, beta;  // s: SAGE self weight; gamma/beta: LayerNorm (GNN layers)
  std::vector<torch::Tensor> all() const {
    std::vector<torch::Tensor> v;
    for (const auto* t : {&w, &s, &b, &gamma, &beta})
      if (t->defined()) v.push_back(*t);
    return v;
  }
};

inline torch::Tensor Xavier(int64_t in, int64_t out, at::Generator& gen) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  return ((torch::rand({in, out}, gen, torch::kFloat32) * 2.0 - 1.0) * a).requires_grad_(true);
}

inline LayerParams MakeLayer(const GnnConfig& cfg, uint32_t layer, int64_t in, int64_t out, bool gnn) {
  at::Generator gen = at::detail::createCPUGenerator(DeriveSeed(cfg.seed, "gnn-param", layer));
  LayerParams p;
  p.w = Xavier(in, out, gen);
  if (gnn && cfg.layer == "sage") p.s = Xavier(in, out, gen);
  p.b = torch::zeros({out}).requires_grad_(true);
  if (gnn) {
    p.gamma = torch::ones({out}).requires_grad_(true);
    p.beta = torch::zeros({out}).requires_grad_(true);
  }
  return p;
}

// One GNN layer on a block of rows: adj (rows x columns of x_all) aggregates, x_self are the rows' own inputs.
inline torch::Tensor GnnLayer(const LayerParams& p, const torch::Tensor& adj, const torch::Tensor& x_all,
                       const torch::Tensor& x_self) {
  torch::Tensor z = torch::mm(adj, x_all).mm(p.w);
  if (p.s.defined()) z = z + x_self.mm(p.s);
  z = torch::layer_norm(z + p.b, {z.size(1)}, p.gamma, p.beta, 1e-5);
  return x_self + torch::relu(z);
}

inline torch::Tensor InputLayer(const LayerParams& p, const torch::Tensor& x) { return torch::relu(x.mm(p.w) + p.b); }
// A LayerNorm (no affine) before the classifier keeps the logits' scale independent of the depth.
inline torch::Tensor OutputLayer(const LayerParams& p, const torch::Tensor& h) {
  return torch::layer_norm(h, {h.size(1)}).mm(p.w) + p.b;
}

// The normalised adjacency rows `rows` (local row i = vertex rows[i]) with column j = col_of(u);
// GCN: D^-1/2 (A + I) D^-1/2; SAGE: D^-1 A (mean of the neighbours, the self term is separate).
inline torch::Tensor AdjacencyRows(const Graph& g, const std::string& layer, const std::vector<uint32_t>& rows,
                            const std::function<int64_t(uint32_t)>& col_of, int64_t num_cols) {
  std::vector<int64_t> ri, ci;
  std::vector<float> val;
  const bool gcn = layer == "gcn";
  auto deg = [&](uint32_t v) { return static_cast<double>(g.offsets[v + 1] - g.offsets[v]); };
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint32_t v = rows[i];
    const double dv = deg(v);
    bool self_done = !gcn;
    for (uint64_t e = g.offsets[v]; e <= g.offsets[v + 1]; ++e) {
      const bool end = e == g.offsets[v + 1];
      const uint32_t u = end ? v : g.targets[e];
      if (!self_done && (end || u > v)) {  // the self loop, in column order
        ri.push_back(static_cast<int64_t>(i));
        ci.push_back(col_of(v));
        val.push_back(static_cast<float>(1.0 / (dv + 1.0)));
        self_done = true;
      }
      if (end) break;
      ri.push_back(static_cast<int64_t>(i));
      ci.push_back(col_of(u));
      val.push_back(static_cast<float>(gcn ? 1.0 / std::sqrt((dv + 1.0) * (deg(u) + 1.0)) : 1.0 / dv));
    }
  }
  const auto nnz = static_cast<int64_t>(val.size());
  torch::Tensor idx = torch::stack({torch::tensor(ri, torch::kInt64), torch::tensor(ci, torch::kInt64)});
  if (nnz == 0) idx = torch::zeros({2, 0}, torch::kInt64);
  return torch::sparse_coo_tensor(idx, torch::tensor(val, torch::kFloat32),
                                  {static_cast<int64_t>(rows.size()), num_cols})
      .coalesce();
}

inline std::vector<float> ToVector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

inline torch::Tensor FromTensor(const PeerTensor& p) {
  return torch::from_blob(const_cast<float*>(p.values.data()), {p.rows, p.dim}, torch::kFloat32).clone();
}

inline PeerTensor MakePeer(TensorKind kind, uint32_t epoch, uint32_t step, uint32_t from, const torch::Tensor& t) {
  PeerTensor p;
  p.kind = kind;
  p.epoch = epoch;
  p.step = step;
  p.from = from;
  p.rows = static_cast<uint32_t>(t.size(0));
  p.dim = static_cast<uint32_t>(t.size(1));
  p.values = ToVector(t);
  return p;
}

inline Status Expect(const PeerTensor& p, uint32_t rows, uint32_t dim, const char* what) {
  if (p.rows != rows || p.dim != dim || p.values.size() != static_cast<size_t>(rows) * dim)
    return Status::InvalidArgument(std::string(what) + " from shard " + std::to_string(p.from) + " is " +
                                   std::to_string(p.rows) + " x " + std::to_string(p.dim) + " (" +
                                   std::to_string(p.values.size()) + " values); expected " + std::to_string(rows) + " x " +
                                   std::to_string(dim));
  for (float x : p.values)
    if (!std::isfinite(x)) return Status::InvalidArgument(std::string(what) + " from shard " + std::to_string(p.from) + " holds a non-finite value");
  return Status::Ok();
}

// What every layout shares: the graph's tensors, labels and splits, and the parameters it owns.
class ShardBase : public GnnShard {
 public:
  ShardBase(const Graph& g, const GnnConfig& cfg) : g_(g), cfg_(cfg) {
    labels_ = torch::tensor(g.labels, torch::kInt64);
    std::vector<uint32_t> train;
    for (uint32_t v = 0; v < g.num_vertices(); ++v)
      if (g.split[v] == VertexSplit::kTrain) train.push_back(v);
    n_train_ = std::max<size_t>(1, train.size());
    for (uint32_t v = 0; v < g.num_vertices(); ++v)
      if (g.split[v] == VertexSplit::kTest) ++n_test_;
    n_test_ = std::max<size_t>(1, n_test_);
  }

  std::vector<float> Parameters() const override {
    std::vector<float> out;
    for (const auto& t : params_) {
      auto v = ToVector(t);
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  }
  uint64_t NumParameters() const override {
    uint64_t n = 0;
    for (const auto& t : params_) n += t.numel();
    return n;
  }

  Result<std::string> SaveState() const override {
    try {
      torch::serialize::OutputArchive ar, opt;
      for (size_t i = 0; i < params_.size(); ++i) ar.write("p" + std::to_string(i), params_[i].detach());
      opt_->save(opt);
      ar.write("optimizer", opt);
      SaveExtra(ar);
      std::ostringstream os;
      ar.save_to(os);
      return os.str();
    } catch (const c10::Error& e) {
      return Status::Failed(std::string("cannot serialise the shard's state: ") + e.what_without_backtrace());
    }
  }
  Status LoadState(const std::string& state) override {
    try {
      torch::serialize::InputArchive ar, opt;
      std::istringstream is(state);
      ar.load_from(is);
      torch::NoGradGuard ng;
      for (size_t i = 0; i < params_.size(); ++i) {
        torch::Tensor t;
        if (!ar.try_read("p" + std::to_string(i), t) || !t.sizes().equals(params_[i].sizes()))
          return Status::InvalidArgument("the shard's state has no parameter " + std::to_string(i) + " of shape " +
                                         Shape(params_[i]) + " (another config?)");
        params_[i].copy_(t);
      }
      if (!ar.try_read("optimizer", opt)) return Status::InvalidArgument("the shard's state has no optimiser part");
      opt_->load(opt);
      RestoreZeroGradients(*opt_);
      return LoadExtra(ar);
    } catch (const c10::Error& e) {
      return Status::InvalidArgument(std::string("the shard's state does not load: ") + e.what_without_backtrace());
    }
  }

 protected:
  // What a layout keeps across epochs besides parameters and optimiser (GNNPipe: its tables).
  virtual void SaveExtra(torch::serialize::OutputArchive& ar) const {}
  virtual Status LoadExtra(torch::serialize::InputArchive& ar) { return Status::Ok(); }
  static std::string Shape(const torch::Tensor& t) {
    std::string s;
    for (int64_t d : t.sizes()) s += (s.empty() ? "" : " x ") + std::to_string(d);
    return s;
  }

  void Own(const LayerParams& p) {
    for (const auto& t : p.all()) params_.push_back(t);
  }
  // This shard's layers: the input layer if `first`, GNN layers l0+1..l1 (0-based [l0, l1)), the
  // output layer if `last`; then the optimiser over them.
  void BuildLayers(uint32_t l0, uint32_t l1, bool first, bool last) {
    if (first) {
      input_ = MakeLayer(cfg_, 0, g_.feature_dim, cfg_.hidden, false);
      Own(input_);
    }
    for (uint32_t l = l0; l < l1; ++l) {
      layers_.push_back(MakeLayer(cfg_, l + 1, cfg_.hidden, cfg_.hidden, true));
      Own(layers_.back());
    }
    if (last) {
      output_ = MakeLayer(cfg_, cfg_.layers + 1, cfg_.hidden, g_.num_classes, false);
      Own(output_);
    }
    MakeOptimizer();
  }
  void MakeOptimizer() {
    opt_ = std::make_unique<torch::optim::Adam>(
        params_, torch::optim::AdamOptions(cfg_.learning_rate).weight_decay(cfg_.weight_decay));
  }
  torch::Tensor Features(const std::vector<uint32_t>& rows) const {
    torch::Tensor all = torch::from_blob(const_cast<float*>(g_.features.data()),
                                         {static_cast<int64_t>(g_.num_vertices()), static_cast<int64_t>(g_.feature_dim)},
                                         torch::kFloat32);
    return all.index_select(0, Index(rows));
  }
  // Training loss of `logits` for vertices `rows` (their part of the mean over all training vertices).
  torch::Tensor TrainLoss(const torch::Tensor& logits, const std::vector<uint32_t>& rows, ShardStats* st) const {
    std::vector<int64_t> local;
    for (size_t i = 0; i < rows.size(); ++i)
      if (g_.split[rows[i]] == VertexSplit::kTrain) local.push_back(static_cast<int64_t>(i));
    if (local.empty()) return (logits.sum() * 0.0);
    torch::Tensor li = torch::tensor(local, torch::kInt64);
    torch::Tensor y = labels_.index_select(0, Index(rows)).index_select(0, li);
    torch::Tensor l = logits.index_select(0, li);
    st->train_correct += l.argmax(1).eq(y).sum().item<int64_t>();
    st->train_seen += local.size();
    return torch::nn::functional::cross_entropy(l, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
           static_cast<double>(n_train_);
  }
  void Score(const torch::Tensor& logits, const std::vector<uint32_t>& rows, ShardStats* st) const {
    torch::Tensor y = labels_.index_select(0, Index(rows));
    torch::Tensor pred = logits.argmax(1);
    torch::Tensor logp = torch::log_softmax(logits, 1);
    auto ok = pred.eq(y);
    auto ok_a = ok.accessor<bool, 1>();
    auto lp = logp.accessor<float, 2>();
    auto ya = y.accessor<int64_t, 1>();
    st->evaluated = true;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int s = static_cast<int>(g_.split[rows[i]]);
      ++st->total[s];
      st->correct[s] += ok_a[i];
      if (s == static_cast<int>(VertexSplit::kTest)) st->test_loss -= lp[i][ya[i]] / static_cast<double>(n_test_);
    }
  }

  const Graph& g_;
  GnnConfig cfg_;
  torch::Tensor labels_;
  size_t n_train_ = 1, n_test_ = 0;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::Adam> opt_;
  LayerParams input_, output_;
  std::vector<LayerParams> layers_;
};

inline std::vector<uint32_t> AllVertices(const Graph& g) {
  std::vector<uint32_t> v(g.num_vertices());
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

// The pipe and graph/hybrid layouts (gnn_shards.cc); `part_of`: chunk (pipe) or partition of each vertex.
std::unique_ptr<GnnShard> MakePipeStage(const Graph& g, const GnnConfig& cfg, uint32_t stage,
                                        const std::vector<uint32_t>& chunk_of);
std::unique_ptr<GnnShard> MakeGraphShard(const Graph& g, const GnnConfig& cfg, uint32_t index,
                                         const std::vector<uint32_t>& part_of);

}  // namespace edgebed::gnn_detail
