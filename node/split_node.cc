#include "node/split_node.h"

#include "record/progress.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>

#include "codecs/activation_codec.h"
#include "codecs/rng.h"
#include "codecs/zmq_wire.h"
#include "node/round_carry.h"
#include "node/width_controller.h"
#include "splitnets/split_training.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

SlimConfig ConfigOf(const wire::SplitSpec& s) {
  SlimConfig c;
  c.widths.assign(s.widths().begin(), s.widths().end());
  c.bottleneck_channels = static_cast<int>(s.bottleneck_channels());
  return c;
}

class SplitNode {
 public:
  SplitNode(ServerInbox& inbox, std::string id, const wire::JoinAck& ack, const NodeOptions& opt, Dataset data,
            std::vector<uint32_t> indices)
      : carry_(opt.state_dir.empty() ? "" : opt.state_dir + "/" + id + ".carry"), inbox_(inbox), sock_(inbox.socket()), id_(std::move(id)), ack_(ack), opt_(opt), data_(std::move(data)), indices_(std::move(indices)) {}

  int Run() {
    auto enc = SlimEncoder::Create(ConfigOf(ack_.split()), ack_.seed(),
                                   {ack_.split().learning_rate(), ack_.split().momentum()});
    if (!enc.ok()) {
      spdlog::error("{}: join_ack.split: {}", id_, enc.status().message());
      return 1;
    }
    enc_ = std::move(enc.value());
    auto initial = enc_->SaveTrainingState();  // what a round starts from before any was trained
    if (!initial.ok()) {
      spdlog::error("{}: {}", id_, initial.status().message());
      return 1;
    }
    initial_ = std::move(initial).value();
    spdlog::info("{}: split learning, encoder widths {}, {} samples", id_, ack_.split().widths_size(), indices_.size());
    Ready();
    for (;;) {
      wire::Envelope in;
      if (!Receive(&in)) return stopped_ ? 0 : 1;
      switch (in.body_case()) {
        case wire::Envelope::kSplitRound:
          if (!Train(in.split_round())) return stopped_ ? 0 : 1;
          break;
        case wire::Envelope::kSplitInferIns:
          if (!Infer(in.split_infer_ins())) return stopped_ ? 0 : 1;
          break;
        case wire::Envelope::kJoinAck:
          if (!Rejoined(in.join_ack())) return 1;
          break;
        case wire::Envelope::kShutdown:
          Leave(in.shutdown().reason());
          return 0;
        case wire::Envelope::kError:
          if (in.error().code() == wire::REJECTED) return 1;
          break;
        default:
          spdlog::warn("{}: ignoring unexpected {} from the server", id_, wire::BodyName(in));
      }
    }
  }

 private:
  void Ready() {
    wire::Envelope ready;
    ready.set_sender(id_);
    ready.mutable_heartbeat()->set_round(0);
    wire::SendEnvelope(sock_, ready);
  }

  void Leave(const std::string& why) {
    spdlog::info("{}: server says shutdown ({}); leaving", id_, wire::Printable(why));
    inbox_.Leave("shutdown");
    stopped_ = true;
  }

  // A join_ack after the node joined again (the link came back, or the server restarted or resumed
  // from its checkpoint): the same run goes on with this encoder; another run is not this process's.
  bool Rejoined(const wire::JoinAck& a) {
    if (!a.accepted() || a.run_id() != ack_.run_id()) {
      spdlog::error("{}: the server now runs {} ({}); this process belonged to run {}; exiting", id_,
                    wire::Printable(a.run_id()), a.accepted() ? "accepted" : wire::Printable(a.reason()),
                    wire::Printable(ack_.run_id()));
      return false;
    }
    spdlog::info("{}: joined run {} again; waiting for the next round", id_, wire::Printable(a.run_id()));
    Ready();
    return true;
  }

  // The next message; false on a stop signal (the node leaves), a lost link or a silent server.
  bool Receive(wire::Envelope* in) {
    switch (inbox_.Next(in)) {
      case ServerInbox::Got::kMessage: return true;
      case ServerInbox::Got::kStop:
        inbox_.Leave("stopped by a signal (SIGTERM or SIGINT)");
        spdlog::info("{}: stopped by a signal; left the federation", id_);
        stopped_ = true;
        return false;
      default: return false;
    }
  }

  // Waits for the server's answer to forward (round, step) or request; nullptr-like false on a
  // shutdown or silence. `skip` is set when the server refused the forward (Error).
  bool AwaitBackward(uint32_t round, uint32_t step, uint32_t request, wire::SplitBackward* out, bool* skip) {
    *skip = false;
    for (;;) {
      wire::Envelope in;
      if (!Receive(&in)) return false;
      if (in.has_split_backward()) {
        const auto& b = in.split_backward();
        if (b.round() == round && b.step() == step && b.request() == request) {
          *out = b;
          return true;
        }
        spdlog::warn("{}: dropped a stale split_backward (round {}, step {})", id_, b.round(), b.step());
      } else if (in.has_error()) {
        if (in.error().code() == wire::REJECTED) return false;
        *skip = true;
        return true;
      } else if (in.has_join_ack()) {  // the server restarted: this round's answers will not come
        abandoned_ = Rejoined(in.join_ack());
        return false;
      } else if (in.has_shutdown()) {
        Leave(in.shutdown().reason());
        return false;
      } else {
        spdlog::warn("{}: ignoring {} while waiting for gradients", id_, wire::BodyName(in));
      }
    }
  }

  Status LoadHead(const google::protobuf::RepeatedPtrField<wire::Tensor>& head, const std::string& field) {
    if (head.empty()) return Status::Ok();
    ParamSet p;
    EDGEBED_RETURN_IF_ERROR(wire::FromTensors(head, field, &enc_->specs(), &p));
    return enc_->SetParams(p);
  }

  // The k-th gradient of a backward (float32 or 8-bit), checked against the batch's shape at `width`.
  Status Gradient(const wire::SplitBackward& back, int k, double width, size_t n, std::vector<float>* g) const {
    const int64_t c = BottleneckChannels(enc_->config(), width);
    const std::string field = std::string("split_backward.") + (back.grad8_size() > 0 ? "grad8[" : "grad[") + std::to_string(k) + "]";
    if (back.grad8_size() > 0) {
      const auto& q = back.grad8(k);
      return DequantiseSigned8(q.codes(), q.scales().data(), static_cast<size_t>(q.scales_size()), n,
                               static_cast<size_t>(c) * kBottleneckSide * kBottleneckSide, field, g);
    }
    const std::vector<TensorSpec> expect = {{BottleneckGradName(width), {static_cast<int64_t>(n), c, 7, 7}}};
    ParamSet p;
    EDGEBED_RETURN_IF_ERROR(wire::FromTensors(
        google::protobuf::RepeatedPtrField<wire::Tensor>(back.grad().begin() + k, back.grad().begin() + k + 1), field,
        &expect, &p));
    *g = std::move(p.flat);
    return Status::Ok();
  }

  void AddBottleneck(wire::SplitForward* f, double width, const std::vector<float>& act) {
    auto* b = f->add_bottleneck();
    b->set_width(width);
    b->set_channels(static_cast<uint32_t>(BottleneckChannels(enc_->config(), width)));
    QuantiseUnit8(act, &codes_);
    b->set_codes(codes_.data(), codes_.size());
  }

  bool Train(const wire::SplitRound& r) {
    const auto t0 = Clock::now();
    // The encoder as it was before this round (a resumed server plays a round again; a restarted
    // node reads it from --state-dir), then the server's head over it.
    auto carry = carry_.Begin(ack_.run_id(), r.round());
    Status loaded = carry.ok() ? Status::Ok() : carry.status();
    if (loaded.ok()) loaded = enc_->LoadTrainingState(carry.value()->encoder.empty() ? initial_ : carry.value()->encoder);
    if (!loaded.ok()) spdlog::error("{}: {}; the encoder goes on as it is", id_, loaded.message());
    if (Status st = LoadHead(r.head(), "split_round.head"); !st.ok()) {
      spdlog::error("{}: {}", id_, st.message());
      return true;  // the server hears nothing from this node this round; it keeps serving the others
    }
    const auto& spec = ack_.split();
    const size_t bs = std::max<uint32_t>(1, spec.batch_size());
    Rng rng = MakeRng(r.seed(), "split-node");
    std::vector<uint32_t> order = indices_;
    std::vector<float> x;
    std::vector<uint8_t> labels;
    std::vector<std::vector<float>> acts;
    uint32_t step = 0;
    const uint32_t total = static_cast<uint32_t>((order.size() + bs - 1) / bs) * std::max<uint32_t>(1, r.local_epochs());
    double loss_sum = 0.0;
    uint32_t losses = 0;
    Progress shown(fmt::format("{}: round {}", id_, r.round()), total, "steps", 10.0, /*live=*/false);
    for (uint32_t e = 0; e < std::max<uint32_t>(1, r.local_epochs()); ++e) {
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t b = 0; b < order.size(); b += bs) {
        const size_t n = std::min(bs, order.size() - b);
        if (r.crash_mid_round() && step >= total / 2) {
          spdlog::warn("{}: fault injection: killing this process mid-round {}", id_, r.round());
          spdlog::default_logger()->flush();
          std::raise(SIGKILL);
        }
        SlimEncoder::Images(data_, order.data() + b, n, &x, &labels);
        const auto widths = StepWidths(enc_->config(), spec.sandwich_random(), spec.train_width(), rng);
        if (!EncodeWidths(*enc_, x.data(), n, widths, &acts).ok()) return false;
        wire::Envelope out;
        out.set_sender(id_);
        auto* f = out.mutable_split_forward();
        f->set_round(r.round());
        f->set_step(++step);
        f->set_steps_total(total);
        shown.Update(step);
        f->set_samples(static_cast<uint32_t>(n));
        for (size_t k = 0; k < widths.size(); ++k) AddBottleneck(f, widths[k], acts[k]);
        f->set_labels(labels.data(), labels.size());
        wire::SendEnvelope(sock_, out);
        wire::SplitBackward back;
        bool skip = false;
        if (!AwaitBackward(r.round(), step, 0, &back, &skip)) return Abandon("round", r.round());
        const int answered = back.grad8_size() > 0 ? back.grad8_size() : back.grad_size();
        const bool whole = answered == static_cast<int>(widths.size());
        if (!skip && !whole)
          spdlog::error("{}: split_backward of step {} has {} gradients for {} widths; the batch takes no step", id_, step,
                        answered, widths.size());
        if (skip || !whole) {
          enc_->Discard();  // the server refused the batch: no gradients, no step
          continue;
        }
        bool ok = true;  // a gradient of the wrong layout: the batch is dropped, not half applied
        for (size_t k = 0; k < widths.size() && ok; ++k) {
          Status st = Gradient(back, static_cast<int>(k), widths[k], n, &grad_);
          if (st.ok()) st = enc_->Backward(widths[k], grad_);
          if (!st.ok()) {
            spdlog::error("{}: {}", id_, st.message());
            ok = false;
          }
        }
        if (!ok) {
          enc_->Discard();
          continue;
        }
        enc_->Step();
        loss_sum += back.loss();
        ++losses;
      }
    }
    if (carry.ok()) {  // what the next round starts from
      auto state = enc_->SaveTrainingState();
      Status kept = state.ok() ? Status::Ok() : state.status();
      if (kept.ok()) {
        carry.value()->encoder = std::move(state).value();
        kept = carry_.Commit();
      }
      if (!kept.ok()) spdlog::error("{}: the encoder's state is not kept: {}", id_, kept.message());
    }
    wire::Envelope done;
    done.set_sender(id_);
    auto* d = done.mutable_split_done();
    d->set_round(r.round());
    wire::ToTensors(enc_->GetParams(), d->mutable_head());
    d->set_num_samples(indices_.size());
    d->set_train_loss(losses ? static_cast<float>(loss_sum / losses) : 0.0f);
    d->set_train_time_s(MsSince(t0) / 1000.0);
    d->set_steps(step);
    wire::SendEnvelope(sock_, done);
    spdlog::info("{}: round {}: {} steps over {} samples in {:.1f} s, loss {:.4f}", id_, r.round(), step,
                 indices_.size(), d->train_time_s(), d->train_loss());
    return true;
  }

  // After AwaitBackward gave up: true (carry on) when it was a rejoin of the same run.
  bool Abandon(const char* what, uint32_t n) {
    if (!abandoned_) return false;
    abandoned_ = false;
    enc_->Discard();
    spdlog::warn("{}: {} {} abandoned: the server restarted in the middle of it", id_, what, n);
    return true;
  }

  // Median encoder time [ms] of `n` images at every width.
  std::vector<double> ProfileEncoder(const std::vector<float>& x, size_t n) {
    std::vector<double> ms;
    for (double w : enc_->config().widths) ms.push_back(EncodeMedianMs(*enc_, w, x.data(), n, 20, /*warmup=*/5));
    return ms;
  }

  bool Infer(const wire::SplitInferIns& ins) {
    if (Status st = LoadHead(ins.head(), "split_infer_ins.head"); !st.ok()) {
      spdlog::error("{}: {}", id_, st.message());
      return true;
    }
    if (test_.size() == 0) {
      auto t = LoadFashionMnist(opt_.data_dir.empty() ? DefaultFashionMnistDir() : opt_.data_dir, false);
      if (!t.ok()) {
        spdlog::error("{}: {}", id_, t.status().message());
        return false;
      }
      test_ = std::move(t.value());
    }
    const auto& cfg = enc_->config();
    const size_t n = std::max<uint32_t>(1, ins.samples_per_request());
    std::vector<uint32_t> idx(n);
    std::vector<float> x, act;
    std::vector<uint8_t> labels;
    for (size_t i = 0; i < n; ++i) idx[i] = static_cast<uint32_t>(i % test_.size());
    SlimEncoder::Images(test_, idx.data(), n, &x, &labels);
    // The encoder's time per width: its FLOPs at split.inference.node_gflops (virtual), or measured.
    const double gflops = ins.node_gflops();
    std::vector<double> node_ms;
    if (gflops > 0)
      for (double w : cfg.widths) node_ms.push_back(static_cast<double>(EncoderFlops(cfg, w)) * n / (gflops * 1e6));
    else
      node_ms = ProfileEncoder(x, n);
    std::vector<WidthOption> options;
    for (size_t i = 0; i < cfg.widths.size(); ++i)
      options.push_back({cfg.widths[i], BottleneckBytesPerSample(cfg, cfg.widths[i]) * n, node_ms[i], node_ms[i]});
    WidthController ctl(options, ins.deadline_ms(), ins.margin(), ins.initial_kbps());
    const bool adaptive = ins.controller() == "adaptive";
    const int fixed = WidthIndex(cfg, ins.fixed_width());
    spdlog::info("{}: inference pass {}: {} requests, {} controller, deadline {:.1f} ms", id_, ins.pass(),
                 ins.requests(), ins.controller(), ins.deadline_ms());
    for (uint32_t q = 1; q <= ins.requests(); ++q) {
      for (size_t i = 0; i < n; ++i) idx[i] = static_cast<uint32_t>(((q - 1) * n + i) % test_.size());
      SlimEncoder::Images(test_, idx.data(), n, &x, &labels);
      const size_t choice = adaptive ? ctl.Choose() : static_cast<size_t>(std::max(0, fixed));
      const double w = cfg.widths[choice];
      const auto a = Clock::now();
      (void)enc_->SetWidth(w);  // a setting: the slice and the BN, nothing reloaded
      (void)enc_->Encode(x.data(), n, false, &act);
      wire::Envelope out;
      out.set_sender(id_);
      auto* f = out.mutable_split_forward();
      f->set_round(ins.pass());
      f->set_request(q);
      f->set_samples(static_cast<uint32_t>(n));
      AddBottleneck(f, w, act);
      f->set_node_ms(gflops > 0 ? node_ms[choice] : MsSince(a));
      f->set_time_s((q - 1) * ins.interval_ms() / 1000.0);
      f->set_labels(labels.data(), labels.size());
      wire::SendEnvelope(sock_, out);
      wire::SplitBackward back;
      bool skip = false;
      if (!AwaitBackward(ins.pass(), 0, q, &back, &skip)) return Abandon("inference pass", ins.pass());
      if (skip) continue;
      ctl.ObserveTransfer(options[choice].bytes, back.air_ms());
      ctl.ObserveServerMs(choice, back.server_ms());
    }
    wire::Envelope done;
    done.set_sender(id_);
    done.mutable_split_infer_done()->set_pass(ins.pass());
    done.mutable_split_infer_done()->set_requests(ins.requests());
    wire::SendEnvelope(sock_, done);
    return true;
  }

  RoundCarry carry_;  // the encoder's training state before each of the last rounds (and in --state-dir)
  std::string initial_;  // ... and before the first
  ServerInbox& inbox_;
  zmq::socket_t& sock_;
  std::string id_;
  wire::JoinAck ack_;
  NodeOptions opt_;
  Dataset data_, test_;
  std::vector<uint32_t> indices_;
  std::unique_ptr<SlimEncoder> enc_;
  std::vector<uint8_t> codes_;
  std::vector<float> grad_;  // the gradient being applied
  bool stopped_ = false;
  bool abandoned_ = false;  // a rejoin in the middle of a round or pass: it is given up
};

}  // namespace

int RunSplitNode(ServerInbox& inbox, const std::string& id, const wire::JoinAck& ack, const NodeOptions& opt,
                 Dataset data, std::vector<uint32_t> indices) {
  SplitNode node(inbox, id, ack, opt, std::move(data), std::move(indices));
  return node.Run();
}

}  // namespace edgebed
