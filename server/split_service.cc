// Split learning's server side (split_service.h): rounds, the decoder's training steps, SplitFed
// averaging, evaluation per width. Inference: split_inference.cc; the checkpoint: split_state.cc.
#include "server/split_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>

#include "codecs/activation_codec.h"
#include "codecs/wire.h"
#include "server/aggregate.h"
#include "server/split_forward_check.h"
#include "server/split_service_impl.h"

namespace edgebed {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Status SplitService::Impl::Receive(uint32_t index, const wire::SplitForward& f, int k, uint64_t transfer,
                                   std::vector<float>* act, ByteLinkStats* st) {
  const std::string& s = f.bottleneck(k).codes();
  std::vector<uint8_t> codes(s.begin(), s.end());
  EDGEBED_RETURN_IF_ERROR(link->Carry(index, f.request() ? 1000000u + f.round() : f.round(),
                                      DeriveSeed(transfer, "bottleneck", static_cast<uint64_t>(k)), f.time_s(),
                                      &codes, st));
  DequantiseUnit8(codes.data(), codes.size(), act);
  return Status::Ok();
}

json SplitService::Impl::Evaluate(bool over_channel) {
  json acc = json::object(), loss = json::object(), chan = json::object();
  std::vector<std::pair<ParamSet*, double>> encoders;
  if (opt.split.heads == "average") {
    encoders.push_back({&head, 1.0});
  } else {
    for (auto& [i, p] : last_heads) encoders.push_back({&p, 1.0 / static_cast<double>(last_heads.size())});
  }
  for (double w : cfg.widths) {
    double a = 0, l = 0, c = 0;
    for (auto& [p, weight] : encoders) {
      (void)eval_enc->SetParams(*p);
      const auto ev = EvaluateSplit(*eval_enc, *dec, test, w, true);
      a += weight * ev.accuracy;
      l += weight * ev.loss;
      if (over_channel) {
        uint64_t batch = 0;
        ByteLinkStats unused;
        const auto evc = EvaluateSplit(*eval_enc, *dec, test, w, true, [&](std::vector<uint8_t>* codes) {
          (void)link->Carry(0, 2000000u, DeriveSeed(batch++, "eval", static_cast<uint64_t>(std::lround(w * 1000))), 0.0,
                            codes, &unused);
        });
        c += weight * evc.accuracy;
      }
    }
    acc[WidthLabel(w)] = a;
    loss[WidthLabel(w)] = l;
    if (over_channel) chan[WidthLabel(w)] = c;
  }
  json out = {{"accuracy_by_width", acc}, {"loss_by_width", loss}};
  if (over_channel) out["channel_accuracy_by_width"] = chan;
  return out;
}

Result<std::unique_ptr<SplitService>> SplitService::Create(const SplitServiceOptions& opt, Dataset test) {
  std::unique_ptr<SplitService> s(new SplitService());
  s->impl_ = std::make_unique<Impl>();
  Impl& m = *s->impl_;
  m.opt = opt;
  m.cfg = opt.slim;
  m.test = std::move(test);
  const SgdConfig sgd{opt.learning_rate, opt.momentum};
  auto dec = SlimDecoder::Create(m.cfg, opt.seed, sgd);
  if (!dec.ok()) return dec.status();
  m.dec = std::move(dec.value());
  auto enc = SlimEncoder::Create(m.cfg, opt.seed);  // the nodes draw the same initial encoder
  if (!enc.ok()) return enc.status();
  m.eval_enc = std::move(enc.value());
  m.head = m.eval_enc->GetParams();
  auto trace = BandwidthTrace::Create(opt.split.bandwidth);
  if (!trace.ok()) return trace.status();
  m.trace = trace.value();
  auto link = ByteLink::Create(opt.channel, opt.nodes, opt.seed, m.trace);
  if (!link.ok()) return link.status();
  m.link = std::move(link.value());
  m.bytes_by_width.assign(m.cfg.widths.size(), 0.0);
  std::string ws;
  for (double w : m.cfg.widths)
    ws += (ws.empty() ? "" : ", ") + WidthLabel(w) + ": " + std::to_string(BottleneckBytesPerSample(m.cfg, w)) + " B";
  spdlog::info("split learning: slimmable encoder on the nodes (bottleneck per sample {}), decoder here; heads {}; "
               "bottleneck link: {}", ws, opt.split.heads, m.link->Describe());
  return s;
}

SplitService::~SplitService() = default;

void SplitService::FillJoinAck(wire::JoinAck* ack) const {
  const auto& sp = impl_->opt.split;
  auto* s = ack->mutable_split();
  for (double w : sp.widths) s->add_widths(w);
  s->set_bottleneck_channels(sp.bottleneck_channels);
  s->set_sandwich_random(sp.sandwich_random);
  s->set_train_width(sp.train_width);
  s->set_heads(sp.heads);
  s->set_batch_size(impl_->opt.batch_size);
  s->set_learning_rate(static_cast<float>(impl_->opt.learning_rate));
  s->set_momentum(static_cast<float>(impl_->opt.momentum));
}

void SplitService::MakeRound(uint32_t r, uint32_t index, wire::SplitRound* out) const {
  out->set_round(r);
  out->set_seed(DeriveSeed(impl_->opt.seed, "split-round", index, r));
  out->set_local_epochs(impl_->opt.local_epochs);
  for (const auto& c : impl_->opt.crashes) out->set_crash_mid_round(out->crash_mid_round() || (c.node == index && c.round == r));
  if (impl_->opt.split.heads == "average") {
    wire::ToTensors(impl_->head, out->mutable_head());
  } else if (impl_->resend_heads) {
    auto it = impl_->last_heads.find(index);
    wire::ToTensors(it != impl_->last_heads.end() ? it->second : impl_->head, out->mutable_head());
  }
}

Status SplitService::CheckForward(const wire::SplitForward& f) const { return CheckSplitForward(impl_->cfg, f); }

std::vector<Result<wire::SplitBackward>> SplitService::TrainForwards(const std::vector<Forward>& forwards) {
  Impl& m = *impl_;
  std::vector<Result<wire::SplitBackward>> out(forwards.size(), Status::Failed("not trained"));
  // Every width's bottleneck through the channel.
  std::vector<std::vector<std::vector<float>>> acts(forwards.size());
  std::vector<SlimDecoder::Batch> batches;
  std::vector<size_t> of_batch;  // forward index of each batch
  std::vector<ByteLinkStats> link(forwards.size());
  for (size_t j = 0; j < forwards.size(); ++j) {
    const wire::SplitForward& f = *forwards[j].f;
    acts[j].resize(static_cast<size_t>(f.bottleneck_size()));
    SlimDecoder::Batch b;
    b.n = f.samples();
    b.labels = reinterpret_cast<const uint8_t*>(f.labels().data());
    Status st = CheckSplitForward(m.cfg, f);
    if (st.ok() && f.request() != 0) st = Status::InvalidArgument("split_forward.request = " + std::to_string(f.request()) + " in a training step");
    for (int k = 0; k < f.bottleneck_size() && st.ok(); ++k) {
      st = m.Receive(forwards[j].index, f, k, f.step(), &acts[j][static_cast<size_t>(k)], &link[j]);
      b.in.push_back({f.bottleneck(k).width(), acts[j][static_cast<size_t>(k)].data()});
    }
    if (!st.ok()) {
      out[j] = st;
      continue;
    }
    batches.push_back(std::move(b));
    of_batch.push_back(j);
  }
  if (batches.empty()) return out;
  m.Threads(static_cast<int>(m.opt.split.decoder_threads));
  const auto t0 = Clock::now();
  auto steps = m.dec->TrainBatches(batches, m.opt.split.distill);
  m.decoder_s += std::chrono::duration<double>(Clock::now() - t0).count();
  ++m.decoder_steps;
  if (!steps.ok()) {
    for (size_t j : of_batch) out[j] = steps.status();
    return out;
  }
  for (size_t i = 0; i < of_batch.size(); ++i) {
    const size_t j = of_batch[i];
    const wire::SplitForward& f = *forwards[j].f;
    const DecoderStep& step = steps.value()[i];
    const size_t n = f.samples();
    wire::SplitBackward back;
    back.set_round(f.round());
    back.set_step(f.step());
    uint64_t grad_bytes = 0;
    ParamSet float_grads;  // gradient_bits = 32: every width's, in one ToTensors
    for (int k = 0; k < f.bottleneck_size(); ++k) {
      const double w = f.bottleneck(k).width();
      const int64_t c = BottleneckChannels(m.cfg, w);
      const auto& g = step.grad[static_cast<size_t>(k)];
      m.bytes_by_width[static_cast<size_t>(WidthIndex(m.cfg, w))] += f.bottleneck(k).codes().size();
      if (m.opt.split.gradient_bits == 8) {
        auto* q = back.add_grad8();
        std::vector<float> scales;
        const size_t per = static_cast<size_t>(c) * 49;
        QuantiseSigned8(g.data(), n, per, q->mutable_codes(), &scales);
        q->mutable_scales()->Add(scales.begin(), scales.end());
        // What the 8 bits lose, against the float32 gradient: what the node will decode.
        if (DequantiseSigned8(q->codes(), scales.data(), scales.size(), n, per, "grad8", &m.decoded).ok())
          for (size_t i = 0; i < g.size(); ++i) {
            const double e = static_cast<double>(g[i]) - m.decoded[i];
            m.quant_err += e * e;
            m.grad_power += static_cast<double>(g[i]) * g[i];
          }
        grad_bytes += q->codes().size() + 4 * scales.size();
      } else {
        float_grads.specs.push_back({BottleneckGradName(w), {static_cast<int64_t>(n), c, 7, 7}});
        float_grads.flat.insert(float_grads.flat.end(), g.begin(), g.end());
      }
    }
    if (!float_grads.specs.empty()) {
      wire::ToTensors(float_grads, back.mutable_grad());
      grad_bytes += float_grads.bytes();
    }
    back.set_loss(static_cast<float>(step.loss[0]));
    m.link_stats.Add(link[j]);
    m.up_bytes += link[j].bytes;
    m.down_bytes += grad_bytes;
    m.loss_sum += step.loss[0];
    ++m.steps;
    m.samples += n;
    out[j] = std::move(back);
  }
  return out;
}

Status SplitService::OnDone(uint32_t index, uint32_t r, const wire::SplitDone& d) {
  Impl& m = *impl_;
  if (d.round() != r)
    return Status::InvalidArgument("split_done.round = " + std::to_string(d.round()) + " but round " + std::to_string(r) +
                                   " is in progress");
  ParamSet p;
  EDGEBED_RETURN_IF_ERROR(wire::FromTensors(d.head(), "split_done.head", &m.eval_enc->specs(), &p));
  m.head_bytes += p.bytes();
  m.heads[index] = {std::move(p), std::max<uint64_t>(1, d.num_samples())};
  return Status::Ok();
}

json SplitService::EndRound(uint32_t r, bool final) {
  Impl& m = *impl_;
  const size_t done = m.heads.size();
  if (m.opt.split.heads == "average" && !m.heads.empty()) {
    WeightedMean mean;
    mean.Reset(m.head.flat.size());
    for (const auto& [i, hp] : m.heads) mean.Add(hp.first.flat.data(), hp.first.flat.size(), static_cast<double>(hp.second));
    mean.Mean(m.head.flat.data());
  }
  for (auto& [i, hp] : m.heads) m.last_heads[i] = std::move(hp.first);
  m.heads.clear();
  m.resend_heads = false;
  if (m.opt.split.heads == "separate" && m.last_heads.empty()) m.last_heads[0] = m.head;  // nobody finished yet
  const auto t0 = Clock::now();
  m.Threads(m.opt.server_threads);
  json ev = m.Evaluate(final && m.opt.channel.uplink != "ideal");
  const double eval_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double widest = ev["accuracy_by_width"][WidthLabel(m.cfg.widths.back())].get<double>();
  const double widest_loss = ev["loss_by_width"][WidthLabel(m.cfg.widths.back())].get<double>();
  json bytes = json::object();
  for (size_t i = 0; i < m.cfg.widths.size(); ++i) bytes[WidthLabel(m.cfg.widths[i])] = m.bytes_by_width[i];
  const double bits = 8.0 * static_cast<double>(m.link_stats.bytes);
  json row = {{"round", r},
              {"test_accuracy", widest},
              {"test_loss", widest_loss},
              {"accuracy_by_width", ev["accuracy_by_width"]},
              {"loss_by_width", ev["loss_by_width"]},
              {"train_loss", m.steps ? m.loss_sum / static_cast<double>(m.steps) : 0.0},
              {"steps", m.steps},
              {"samples", m.samples},
              {"participants", done},
              {"uplink_bytes", m.up_bytes + m.head_bytes},
              {"uplink_bottleneck_bytes", m.up_bytes},
              {"uplink_bottleneck_bytes_by_width", bytes},
              {"uplink_head_bytes", m.head_bytes},
              {"downlink_gradient_bytes", m.down_bytes},
              {"bit_errors", m.link_stats.bit_errors},
              {"bottleneck_ber", bits > 0 ? static_cast<double>(m.link_stats.bit_errors) / bits : 0.0},
              {"failed_packets", m.link_stats.failed_packets},
              {"uplink_airtime_s", m.link_stats.airtime_s},
              {"decoder_s", m.decoder_s},
              {"decoder_steps", m.decoder_steps},
              {"gradient_quant_nmse", m.grad_power > 0 ? m.quant_err / m.grad_power : 0.0},
              {"eval_s", eval_s}};
  if (ev.contains("channel_accuracy_by_width")) row["channel_accuracy_by_width"] = ev["channel_accuracy_by_width"];
  m.last_eval = row;
  m.link_stats = ByteLinkStats();
  m.up_bytes = m.down_bytes = m.head_bytes = m.steps = m.samples = m.decoder_steps = 0;
  m.loss_sum = m.decoder_s = m.quant_err = m.grad_power = 0.0;
  m.bytes_by_width.assign(m.cfg.widths.size(), 0.0);
  return row;
}

json SplitService::Summary() const {
  const Impl& m = *impl_;
  json widths = json::array();
  for (double w : m.cfg.widths)
    widths.push_back({{"width", w},
                      {"bottleneck_channels", BottleneckChannels(m.cfg, w)},
                      {"bytes_per_sample", BottleneckBytesPerSample(m.cfg, w)},
                      {"encoder_mflops", EncoderFlops(m.cfg, w) / 1e6},
                      {"decoder_mflops", DecoderFlops(m.cfg, w) / 1e6},
                      {"test_accuracy", m.last_eval.is_null() ? json(nullptr) : m.last_eval["accuracy_by_width"][WidthLabel(w)]},
                      {"channel_test_accuracy", m.last_eval.contains("channel_accuracy_by_width")
                                                    ? m.last_eval["channel_accuracy_by_width"][WidthLabel(w)]
                                                    : json(nullptr)}});
  return {{"widths", widths}, {"heads", m.opt.split.heads}, {"bottleneck_link", m.link->Describe()},
          {"encoder_parameters", m.eval_enc->NumParameterValues()}};
}

}  // namespace edgebed
