// The GNNPipe stage and the graph-parallel (and hybrid) partition: gnn/'s second libtorch
// translation unit.
#include "gnn/gnn_shard_base.h"

namespace edgebed::gnn_detail {
namespace {

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

  // The historical tables and the epoch each chunk's rows were last written (staleness).
  void SaveExtra(torch::serialize::OutputArchive& ar) const override {
    for (size_t j = 0; j < tables_.size(); ++j) {
      ar.write("table" + std::to_string(j), tables_[j]);
      std::vector<int64_t> w(written_[j].begin(), written_[j].end());
      ar.write("written" + std::to_string(j), torch::tensor(w, torch::kInt64));
    }
  }
  Status LoadExtra(torch::serialize::InputArchive& ar) override {
    for (size_t j = 0; j < tables_.size(); ++j) {
      torch::Tensor t, w;
      if (!ar.try_read("table" + std::to_string(j), t) || !t.sizes().equals(tables_[j].sizes()) ||
          !ar.try_read("written" + std::to_string(j), w) || w.numel() != static_cast<int64_t>(written_[j].size()))
        return Status::InvalidArgument("the stage's state has no table " + std::to_string(j) + " of shape " +
                                       Shape(tables_[j]) + " (another config?)");
      tables_[j].copy_(t);
      auto wa = w.accessor<int64_t, 1>();
      for (size_t k = 0; k < written_[j].size(); ++k) written_[j][k] = static_cast<uint32_t>(wa[static_cast<int64_t>(k)]);
    }
    return Status::Ok();
  }

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

std::unique_ptr<GnnShard> MakePipeStage(const Graph& g, const GnnConfig& cfg, uint32_t stage,
                                        const std::vector<uint32_t>& chunk_of) {
  return std::make_unique<PipeStage>(g, cfg, stage, chunk_of);
}

std::unique_ptr<GnnShard> MakeGraphShard(const Graph& g, const GnnConfig& cfg, uint32_t index,
                                         const std::vector<uint32_t>& part_of) {
  return std::make_unique<GraphShard>(g, cfg, index, part_of);
}

}  // namespace edgebed::gnn_detail
