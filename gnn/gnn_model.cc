// gnn/'s one libtorch translation unit: layers, the three layouts, the kNN graph.
#include "gnn/gnn_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "splitnets/dataset.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

torch::Tensor Index(const std::vector<uint32_t>& v) {
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

torch::Tensor Xavier(int64_t in, int64_t out, at::Generator& gen) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  return ((torch::rand({in, out}, gen, torch::kFloat32) * 2.0 - 1.0) * a).requires_grad_(true);
}

LayerParams MakeLayer(const GnnConfig& cfg, uint32_t layer, int64_t in, int64_t out, bool gnn) {
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
torch::Tensor GnnLayer(const LayerParams& p, const torch::Tensor& adj, const torch::Tensor& x_all,
                       const torch::Tensor& x_self) {
  torch::Tensor z = torch::mm(adj, x_all).mm(p.w);
  if (p.s.defined()) z = z + x_self.mm(p.s);
  z = torch::layer_norm(z + p.b, {z.size(1)}, p.gamma, p.beta, 1e-5);
  return x_self + torch::relu(z);
}

torch::Tensor InputLayer(const LayerParams& p, const torch::Tensor& x) { return torch::relu(x.mm(p.w) + p.b); }
// A LayerNorm (no affine) before the classifier keeps the logits' scale independent of the depth.
torch::Tensor OutputLayer(const LayerParams& p, const torch::Tensor& h) {
  return torch::layer_norm(h, {h.size(1)}).mm(p.w) + p.b;
}

// The normalised adjacency rows `rows` (local row i = vertex rows[i]) with column j = col_of(u);
// GCN: D^-1/2 (A + I) D^-1/2; SAGE: D^-1 A (mean of the neighbours, the self term is separate).
torch::Tensor AdjacencyRows(const Graph& g, const std::string& layer, const std::vector<uint32_t>& rows,
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

std::vector<float> ToVector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

torch::Tensor FromTensor(const PeerTensor& p) {
  return torch::from_blob(const_cast<float*>(p.values.data()), {p.rows, p.dim}, torch::kFloat32).clone();
}

PeerTensor MakePeer(TensorKind kind, uint32_t epoch, uint32_t step, uint32_t from, const torch::Tensor& t) {
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

Status Expect(const PeerTensor& p, uint32_t rows, uint32_t dim, const char* what) {
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

 protected:
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

std::vector<uint32_t> AllVertices(const Graph& g) {
  std::vector<uint32_t> v(g.num_vertices());
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

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

// ---- pipe: GNNPipe stage -----------------------------------------------------------------------
class PipeStage : public ShardBase {
 public:
  PipeStage(const Graph& g, const GnnConfig& cfg, uint32_t stage, const std::vector<uint32_t>& chunk_of)
      : ShardBase(g, cfg), s_(stage), P_(cfg.parts) {
    const uint32_t n = g.num_vertices();
    l0_ = cfg.layers * s_ / P_;
    l1_ = cfg.layers * (s_ + 1) / P_;
    chunks_ = PartMembers(chunk_of, cfg.chunks);
    all_ = AllVertices(g);
    full_adj_ = AdjacencyRows(g, cfg.layer, all_, [](uint32_t u) { return static_cast<int64_t>(u); }, n);
    const uint32_t K = cfg.chunks;
    for (uint32_t c = 0; c < K; ++c) {
      idx_.push_back(Index(chunks_[c]));
      adj_.push_back(AdjacencyRows(g, cfg.layer, chunks_[c], [](uint32_t u) { return static_cast<int64_t>(u); }, n));
      // Reads of a later chunk's rows are historical; rows of this chunk an earlier chunk reads stale.
      uint64_t stale = 0, all = 0;
      std::vector<uint32_t> read_stale;
      for (uint32_t v : chunks_[c]) {
        bool read_by_earlier = false;
        for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
          const uint32_t cu = chunk_of[g.targets[e]];
          stale += cu > c;
          read_by_earlier |= cu < c;
          ++all;
        }
        if (read_by_earlier) read_stale.push_back(v);
      }
      stale_reads_.push_back(stale);
      fresh_reads_.push_back(all - stale + (cfg.layer == "gcn" ? chunks_[c].size() : 0));
      stale_rows_.push_back(Index(read_stale));
    }
    if (s_ == 0) {
      for (uint32_t c = 0; c < K; ++c) x_.push_back(Features(chunks_[c]));
      x_all_ = Features(all_);
    }
    BuildLayers(l0_, l1_, s_ == 0, last());
    for (uint32_t l = l0_; l < l1_; ++l) {  // each layer's table of inputs: historical until computed
      tables_.push_back(torch::zeros({static_cast<int64_t>(n), static_cast<int64_t>(cfg.hidden)}));
      written_.push_back(std::vector<uint32_t>(K, 0));
    }
  }

  Status TrainEpoch(uint32_t epoch, PeerTransport* t, const std::function<void(double)>& progress,
                    ShardStats* st) override {
    const auto t0 = Clock::now();
    const uint32_t K = cfg_.chunks, d = cfg_.hidden;
    opt_->zero_grad();
    std::vector<torch::Tensor> in(K), out(K);
    const double steps = last() ? K : 2.0 * K;
    for (uint32_t c = 0; c < K; ++c) {
      torch::Tensor h;
      if (s_ == 0) {
        h = InputLayer(input_, x_[c]);
      } else {
        PeerTensor p;
        EDGEBED_RETURN_IF_ERROR(t->Receive(s_ - 1, TensorKind::kEmbedding, epoch, c, &p));
        EDGEBED_RETURN_IF_ERROR(Expect(p, static_cast<uint32_t>(chunks_[c].size()), d, "embeddings"));
        in[c] = FromTensor(p).requires_grad_(true);
        h = in[c];
      }
      for (size_t j = 0; j < layers_.size(); ++j) h = ChunkLayer(j, c, h, epoch, st);
      if (last()) {
        torch::Tensor loss = TrainLoss(OutputLayer(output_, h), chunks_[c], st);
        st->train_loss += loss.item<double>();
        loss.backward();
        if (s_ > 0) EDGEBED_RETURN_IF_ERROR(t->Send(s_ - 1, MakePeer(TensorKind::kGradient, epoch, c, s_, in[c].grad())));
        in[c] = torch::Tensor();
      } else {
        out[c] = h;
        EDGEBED_RETURN_IF_ERROR(t->Send(s_ + 1, MakePeer(TensorKind::kEmbedding, epoch, c, s_, h)));
      }
      if (progress) progress((c + 1) / steps);
    }
    if (!last()) {  // gradients come back in chunk order (the last stage answers each chunk at once)
      for (uint32_t c = 0; c < K; ++c) {
        PeerTensor p;
        EDGEBED_RETURN_IF_ERROR(t->Receive(s_ + 1, TensorKind::kGradient, epoch, c, &p));
        EDGEBED_RETURN_IF_ERROR(Expect(p, static_cast<uint32_t>(chunks_[c].size()), d, "gradients"));
        out[c].backward(FromTensor(p));
        out[c] = torch::Tensor();
        if (s_ > 0) EDGEBED_RETURN_IF_ERROR(t->Send(s_ - 1, MakePeer(TensorKind::kGradient, epoch, c, s_, in[c].grad())));
        in[c] = torch::Tensor();
        if (progress) progress((K + c + 1) / steps);
      }
    }
    opt_->step();
    st->train_s += Since(t0);
    return Status::Ok();
  }

  Status Evaluate(uint32_t epoch, PeerTransport* t, ShardStats* st) override {
    const auto t0 = Clock::now();
    torch::NoGradGuard ng;
    torch::Tensor h;
    if (s_ == 0) {
      h = InputLayer(input_, x_all_);
    } else {
      PeerTensor p;
      EDGEBED_RETURN_IF_ERROR(t->Receive(s_ - 1, TensorKind::kEval, epoch, 0, &p));
      EDGEBED_RETURN_IF_ERROR(Expect(p, g_.num_vertices(), cfg_.hidden, "evaluation embeddings"));
      h = FromTensor(p);
    }
    for (const auto& p : layers_) h = GnnLayer(p, full_adj_, h, h);
    if (last())
      Score(OutputLayer(output_, h), all_, st);
    else
      EDGEBED_RETURN_IF_ERROR(t->Send(s_ + 1, MakePeer(TensorKind::kEval, epoch, 0, s_, h)));
    st->eval_s += Since(t0);
    return Status::Ok();
  }

  std::string Describe() const override {
    return "pipeline stage " + std::to_string(s_) + " of " + std::to_string(P_) + ": layers " + std::to_string(l0_ + 1) +
           ".." + std::to_string(l1_) + (s_ == 0 ? " + input" : "") + (last() ? " + output" : "") + ", " +
           std::to_string(cfg_.chunks) + " chunks";
  }
  std::vector<float> TableRow(uint32_t j, uint32_t v) const override { return ToVector(tables_.at(j)[v]); }

 private:
  bool last() const { return s_ + 1 == P_; }

  // Local layer j on chunk c: the chunk's fresh inputs x_c over the layer's table of all vertices.
  torch::Tensor ChunkLayer(size_t j, uint32_t c, const torch::Tensor& x_c, uint32_t epoch, ShardStats* st) {
    torch::Tensor& table = tables_[j];
    torch::Tensor x_all = table.clone();
    x_all.index_put_({idx_[c]}, x_c);
    st->stale_reads += stale_reads_[c];
    st->fresh_reads += fresh_reads_[c];
    if (stale_reads_[c] > 0)
      for (uint32_t k = c + 1; k < cfg_.chunks; ++k)
        st->max_staleness = std::max(st->max_staleness, epoch - written_[j][k]);
    torch::Tensor out = GnnLayer(layers_[j], adj_[c], x_all, x_c);
    // How far the historical rows earlier chunks read were from the fresh ones.
    if (stale_rows_[c].numel() > 0) {
      torch::NoGradGuard ng;
      torch::Tensor fresh = x_all.index_select(0, stale_rows_[c]);
      st->stale_diff_sq += (table.index_select(0, stale_rows_[c]) - fresh).pow(2).sum().item<double>();
      st->stale_norm_sq += fresh.pow(2).sum().item<double>();
    }
    table.index_put_({idx_[c]}, x_c.detach());
    written_[j][c] = epoch;
    return out;
  }

  uint32_t s_, P_, l0_ = 0, l1_ = 0;
  std::vector<std::vector<uint32_t>> chunks_;
  std::vector<uint32_t> all_;
  std::vector<torch::Tensor> idx_, adj_, x_, stale_rows_, tables_;
  std::vector<uint64_t> stale_reads_, fresh_reads_;
  std::vector<std::vector<uint32_t>> written_;
  torch::Tensor full_adj_, x_all_;
};

// ---- graph: graph-parallel partition (and hybrid: one partition of one pipeline stage) ---------
// Shard (stage s, partition q) is process s * Q + q. In graph mode there is one stage (S = 1) with
// every layer; in hybrid mode stage s holds layers [L s / S, L (s+1) / S) and passes its
// partition's rows to the same partition of the next stage.
class GraphShard : public ShardBase {
 public:
  GraphShard(const Graph& g, const GnnConfig& cfg, uint32_t index, const std::vector<uint32_t>& part_of)
      : ShardBase(g, cfg), Q_(cfg.mode == "hybrid" ? cfg.partitions : cfg.parts),
        S_(cfg.mode == "hybrid" ? cfg.parts : 1), s_(index / Q_), p_(index % Q_) {
    const uint32_t n = g.num_vertices();
    l0_ = cfg.layers * s_ / S_;
    l1_ = cfg.layers * (s_ + 1) / S_;
    own_ = PartMembers(part_of, Q_)[p_];
    // The halo: vertices of other parts adjacent to this one, ascending; what each peer needs of ours.
    std::vector<uint8_t> in_halo(n, 0);
    for (uint32_t v : own_)
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e)
        if (part_of[g.targets[e]] != p_) in_halo[g.targets[e]] = 1;
    for (uint32_t u = 0; u < n; ++u)
      if (in_halo[u]) halo_.push_back(u);
    recv_rows_.assign(Q_, {});
    send_rows_.assign(Q_, {});
    for (size_t i = 0; i < halo_.size(); ++i) recv_rows_[part_of[halo_[i]]].push_back(static_cast<int64_t>(i));
    // Peer q needs our vertex v when v is adjacent to q's part; in ascending v (q's halo order).
    std::vector<int64_t> local(n, -1);
    for (size_t i = 0; i < own_.size(); ++i) local[own_[i]] = static_cast<int64_t>(i);
    for (size_t i = 0; i < halo_.size(); ++i) local[halo_[i]] = static_cast<int64_t>(own_.size() + i);
    std::vector<uint32_t> mark(Q_, ~0u);
    for (uint32_t v : own_) {
      std::fill(mark.begin(), mark.end(), ~0u);
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
        const uint32_t q = part_of[g.targets[e]];
        if (q != p_ && mark[q] != v) mark[q] = v, send_rows_[q].push_back(local[v]);
      }
    }
    for (uint32_t q = 0; q < Q_; ++q) {
      send_idx_.push_back(torch::tensor(send_rows_[q], torch::kInt64));
      recv_idx_.push_back(torch::tensor(recv_rows_[q], torch::kInt64));
    }
    adj_ = AdjacencyRows(g, cfg.layer, own_, [&](uint32_t u) { return local[u]; },
                         static_cast<int64_t>(own_.size() + halo_.size()));
    if (first()) x_ = Features(own_);
    BuildLayers(l0_, l1_, first(), last());
  }

  Status TrainEpoch(uint32_t epoch, PeerTransport* t, const std::function<void(double)>& progress,
                    ShardStats* st) override {
    const auto t0 = Clock::now();
    const uint32_t L = static_cast<uint32_t>(layers_.size()), rows = static_cast<uint32_t>(own_.size());
    opt_->zero_grad();
    std::vector<torch::Tensor> own_in(L), halo_in(L), out(L + 1);
    torch::Tensor stage_in;  // hybrid, stage > 0: the previous stage's rows of this partition
    if (first()) {
      out[0] = InputLayer(input_, x_);
    } else {
      PeerTensor p;
      EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_ - 1, p_), TensorKind::kEmbedding, epoch, l0_, &p));
      EDGEBED_RETURN_IF_ERROR(Expect(p, rows, cfg_.hidden, "stage embeddings"));
      stage_in = FromTensor(p).requires_grad_(true);
      out[0] = stage_in;
    }
    const double steps = 2.0 * L + 1;
    for (uint32_t l = 0; l < L; ++l) {
      own_in[l] = out[l].detach().requires_grad_(true);
      torch::Tensor halo;
      EDGEBED_RETURN_IF_ERROR(Exchange(TensorKind::kEmbedding, epoch, l0_ + l, own_in[l], &halo, t));
      halo_in[l] = halo.requires_grad_(true);
      out[l + 1] = GnnLayer(layers_[l], adj_, torch::cat({own_in[l], halo_in[l]}), own_in[l]);
      if (progress) progress((l + 1) / steps);
    }
    torch::Tensor grad;
    if (last()) {
      torch::Tensor top = out[L].detach().requires_grad_(true);
      torch::Tensor loss = TrainLoss(OutputLayer(output_, top), own_, st);
      st->train_loss += loss.item<double>();
      loss.backward();
      grad = top.grad();
    } else {
      EDGEBED_RETURN_IF_ERROR(t->Send(Peer(s_ + 1, p_), MakePeer(TensorKind::kEmbedding, epoch, l1_, Index(), out[L])));
      PeerTensor p;
      EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_ + 1, p_), TensorKind::kGradient, epoch, l1_, &p));
      EDGEBED_RETURN_IF_ERROR(Expect(p, rows, cfg_.hidden, "stage gradients"));
      grad = FromTensor(p);
    }
    for (uint32_t l = L; l-- > 0;) {
      out[l + 1].backward(grad);
      // The halo's gradients go back to their owners; ours come from the peers that read them.
      torch::Tensor back;
      EDGEBED_RETURN_IF_ERROR(ExchangeGradients(epoch, l0_ + l, halo_in[l].grad(), own_in[l].grad(), &back, t));
      grad = back;
      if (progress) progress((2.0 * L - l) / steps);
    }
    if (first()) {
      out[0].backward(grad);
    } else {  // d loss / d (this stage's input rows) goes to the same partition of the previous stage
      EDGEBED_RETURN_IF_ERROR(t->Send(Peer(s_ - 1, p_), MakePeer(TensorKind::kGradient, epoch, l0_, Index(), grad)));
    }
    EDGEBED_RETURN_IF_ERROR(AllReduceGradients(epoch, t));
    opt_->step();
    if (progress) progress(1.0);
    st->train_s += Since(t0);
    return Status::Ok();
  }

  Status Evaluate(uint32_t epoch, PeerTransport* t, ShardStats* st) override {
    const auto t0 = Clock::now();
    torch::NoGradGuard ng;
    torch::Tensor h;
    if (first()) {
      h = InputLayer(input_, x_);
    } else {
      PeerTensor p;
      EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_ - 1, p_), TensorKind::kEval, epoch, l0_, &p));
      EDGEBED_RETURN_IF_ERROR(Expect(p, static_cast<uint32_t>(own_.size()), cfg_.hidden, "stage evaluation embeddings"));
      h = FromTensor(p);
    }
    for (uint32_t l = 0; l < layers_.size(); ++l) {
      torch::Tensor halo;
      EDGEBED_RETURN_IF_ERROR(Exchange(TensorKind::kEval, epoch, l0_ + l, h, &halo, t));
      h = GnnLayer(layers_[l], adj_, torch::cat({h, halo}), h);
    }
    if (last())
      Score(OutputLayer(output_, h), own_, st);
    else
      EDGEBED_RETURN_IF_ERROR(t->Send(Peer(s_ + 1, p_), MakePeer(TensorKind::kEval, epoch, l1_, Index(), h)));
    st->eval_s += Since(t0);
    return Status::Ok();
  }

  std::string Describe() const override {
    std::string d = "graph partition " + std::to_string(p_) + " of " + std::to_string(Q_) + ": " + std::to_string(own_.size()) +
                    " vertices, halo " + std::to_string(halo_.size());
    if (S_ == 1) return d + ", all " + std::to_string(cfg_.layers) + " layers";
    return d + "; pipeline stage " + std::to_string(s_) + " of " + std::to_string(S_) + ": layers " +
           std::to_string(l0_ + 1) + ".." + std::to_string(l1_) + (first() ? " + input" : "") + (last() ? " + output" : "");
  }

 private:
  bool first() const { return s_ == 0; }
  bool last() const { return s_ + 1 == S_; }
  uint32_t Index() const { return s_ * Q_ + p_; }
  uint32_t Peer(uint32_t stage, uint32_t part) const { return stage * Q_ + part; }

  // Sends each peer partition (same stage) the rows of `own` it needs and gathers our halo's rows.
  Status Exchange(TensorKind kind, uint32_t epoch, uint32_t layer, const torch::Tensor& own, torch::Tensor* halo,
                  PeerTransport* t) {
    const int64_t d = cfg_.hidden;
    for (uint32_t q = 0; q < Q_; ++q)
      if (q != p_)
        EDGEBED_RETURN_IF_ERROR(
            t->Send(Peer(s_, q), MakePeer(kind, epoch, layer, Index(), own.detach().index_select(0, send_idx_[q]))));
    *halo = torch::zeros({static_cast<int64_t>(halo_.size()), d});
    for (uint32_t q = 0; q < Q_; ++q) {
      if (q == p_) continue;
      PeerTensor in;
      EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_, q), kind, epoch, layer, &in));
      EDGEBED_RETURN_IF_ERROR(Expect(in, static_cast<uint32_t>(recv_rows_[q].size()), cfg_.hidden, "halo embeddings"));
      halo->index_copy_(0, recv_idx_[q], FromTensor(in));
    }
    return Status::Ok();
  }
  // Sends the halo gradients to their owners; returns own_grad plus what the peers send for our rows.
  Status ExchangeGradients(uint32_t epoch, uint32_t layer, torch::Tensor halo_grad, const torch::Tensor& own_grad,
                           torch::Tensor* total, PeerTransport* t) {
    if (!halo_grad.defined()) halo_grad = torch::zeros({static_cast<int64_t>(halo_.size()), static_cast<int64_t>(cfg_.hidden)});
    for (uint32_t q = 0; q < Q_; ++q)
      if (q != p_)
        EDGEBED_RETURN_IF_ERROR(t->Send(
            Peer(s_, q), MakePeer(TensorKind::kGradient, epoch, layer, Index(), halo_grad.index_select(0, recv_idx_[q]))));
    *total = own_grad.clone();
    for (uint32_t q = 0; q < Q_; ++q) {
      if (q == p_) continue;
      PeerTensor in;
      EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_, q), TensorKind::kGradient, epoch, layer, &in));
      EDGEBED_RETURN_IF_ERROR(Expect(in, static_cast<uint32_t>(send_rows_[q].size()), cfg_.hidden, "halo gradients"));
      total->index_add_(0, send_idx_[q], FromTensor(in));
    }
    return Status::Ok();
  }
  // Every partition of this stage ends with the same summed gradient: the sum in partition order.
  Status AllReduceGradients(uint32_t epoch, PeerTransport* t) {
    if (Q_ == 1) return Status::Ok();
    std::vector<torch::Tensor> grads;
    for (auto& p : params_) grads.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}));
    torch::Tensor mine = torch::cat(grads).reshape({1, -1});
    for (uint32_t q = 0; q < Q_; ++q)
      if (q != p_) EDGEBED_RETURN_IF_ERROR(t->Send(Peer(s_, q), MakePeer(TensorKind::kParameter, epoch, 0, Index(), mine)));
    torch::Tensor sum;
    for (uint32_t q = 0; q < Q_; ++q) {
      torch::Tensor g = mine;
      if (q != p_) {
        PeerTensor in;
        EDGEBED_RETURN_IF_ERROR(t->Receive(Peer(s_, q), TensorKind::kParameter, epoch, 0, &in));
        EDGEBED_RETURN_IF_ERROR(Expect(in, 1, static_cast<uint32_t>(mine.size(1)), "parameter gradients"));
        g = FromTensor(in);
      }
      sum = sum.defined() ? sum + g : g.clone();
    }
    sum = sum.reshape({-1});
    int64_t off = 0;
    for (auto& p : params_) {
      torch::Tensor gi = sum.narrow(0, off, p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(gi); else p.mutable_grad() = gi.clone();
      off += p.numel();
    }
    return Status::Ok();
  }

  uint32_t Q_, S_, s_, p_, l0_ = 0, l1_ = 0;
  std::vector<uint32_t> own_, halo_;
  std::vector<std::vector<int64_t>> recv_rows_, send_rows_;
  std::vector<torch::Tensor> send_idx_, recv_idx_;
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
    return std::unique_ptr<GnnShard>(new PipeStage(g, cfg, index, part.value()));
  }
  if (cfg.mode == "graph") return std::unique_ptr<GnnShard>(new GraphShard(g, cfg, index, part.value()));
  if (cfg.mode == "hybrid") {
    if (cfg.parts > cfg.layers || cfg.partitions == 0)
      return Status::InvalidArgument("gnn.parts = " + std::to_string(cfg.parts) + " stages for gnn.layers = " +
                                     std::to_string(cfg.layers) + " and gnn.partitions = " + std::to_string(cfg.partitions) +
                                     ": each stage needs a layer and a partition");
    return std::unique_ptr<GnnShard>(new GraphShard(g, cfg, index, part.value()));
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
