#include "server/split_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

#include "codecs/activation_codec.h"
#include "codecs/rng.h"
#include "codecs/state_bytes.h"
#include "codecs/wire.h"
#include "server/inference_report.h"
#include "server/split_forward_check.h"
#include "server/aggregate.h"
#include "splitnets/learner.h"
#include "splitnets/split_training.h"

namespace edgebed {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

}  // namespace

struct SplitService::Impl {
  SplitServiceOptions opt;
  SlimConfig cfg;
  Dataset test;
  std::unique_ptr<SlimDecoder> dec;
  std::unique_ptr<SlimEncoder> eval_enc;  // the averaged encoder (or each node's, in turn)
  std::unique_ptr<ByteLink> link;
  BandwidthTrace trace;
  ParamSet head;                          // heads = average: what every node starts the round from
  std::map<uint32_t, std::pair<ParamSet, uint64_t>> heads;  // node index -> (encoder, samples) of this round
  std::map<uint32_t, ParamSet> last_heads;                  // heads = separate: each node's latest
  bool resend_heads = false;  // resumed: the next round sends every node its encoder (heads = separate)
  // The round in progress.
  ByteLinkStats link_stats;
  uint64_t up_bytes = 0, down_bytes = 0, head_bytes = 0, steps = 0, samples = 0;
  double loss_sum = 0.0, decoder_s = 0.0;
  std::vector<double> bytes_by_width;
  json last_eval;
  // Inference.
  std::vector<InferRow> rows;
  std::map<uint32_t, std::string> pass_controller;

  // The bytes of bottleneck k after the channel, dequantised.
  Status Receive(uint32_t index, const wire::SplitForward& f, int k, uint64_t transfer, std::vector<float>* act,
                 ByteLinkStats* st) {
    const std::string& s = f.bottleneck(k).codes();
    std::vector<uint8_t> codes(s.begin(), s.end());
    EDGEBED_RETURN_IF_ERROR(link->Carry(index, f.request() ? 1000000u + f.round() : f.round(),
                                        DeriveSeed(transfer, "bottleneck", static_cast<uint64_t>(k)), f.time_s(),
                                        &codes, st));
    DequantiseUnit8(codes.data(), codes.size(), act);
    return Status::Ok();
  }

  json Evaluate(bool over_channel) {
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
};

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

Status SplitService::OnForward(uint32_t index, const wire::SplitForward& f, wire::SplitBackward* out) {
  Impl& m = *impl_;
  EDGEBED_RETURN_IF_ERROR(CheckSplitForward(m.cfg, f));
  const size_t n = f.samples();
  const auto* labels = reinterpret_cast<const uint8_t*>(f.labels().data());
  const uint64_t transfer = f.request() ? f.request() : f.step();
  out->set_round(f.round());
  out->set_step(f.step());
  out->set_request(f.request());
  if (f.request() > 0) {  // inference
    ByteLinkStats st;
    std::vector<float> act;
    EDGEBED_RETURN_IF_ERROR(m.Receive(index, f, 0, transfer, &act, &st));
    const double width = f.bottleneck(0).width();
    const auto t0 = Clock::now();
    std::vector<uint8_t> pred;
    EDGEBED_RETURN_IF_ERROR(m.dec->Predict({width, act.data()}, n, &pred));
    const double gflops = m.opt.split.inference.server_gflops;  // virtual compute time, or measured
    const double server_ms = gflops > 0 ? static_cast<double>(DecoderFlops(m.cfg, width)) * n / (gflops * 1e6)
                                        : std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    out->set_predictions(pred.data(), pred.size());
    out->set_air_ms(st.airtime_s * 1000.0);
    out->set_server_ms(server_ms);
    InferRow row;
    row.pass = f.round();
    row.controller = m.pass_controller[f.round()];
    row.request = f.request();
    row.samples = f.samples();
    for (size_t i = 0; i < n; ++i) row.correct += pred[i] == labels[i];
    row.t_s = f.time_s();
    row.width = width;
    row.bytes = st.bytes;
    row.bit_errors = st.bit_errors;
    row.kbps = m.trace.empty() ? (st.airtime_s > 0 ? st.bytes * 8.0 / st.airtime_s / 1000.0 : 0.0) : m.trace.KbpsAt(f.time_s());
    row.node_ms = f.node_ms();
    row.air_ms = st.airtime_s * 1000.0;
    row.server_ms = server_ms;
    row.latency_ms = row.node_ms + row.air_ms + row.server_ms;
    row.met = row.latency_ms <= m.opt.split.inference.deadline_ms;
    m.rows.push_back(row);
    m.link_stats.Add(st);
    return Status::Ok();
  }
  // Training: every width's bottleneck through the channel, one decoder step, gradients back.
  std::vector<std::vector<float>> acts(static_cast<size_t>(f.bottleneck_size()));
  std::vector<SlimDecoder::Input> in;
  ByteLinkStats st;
  for (int k = 0; k < f.bottleneck_size(); ++k) {
    EDGEBED_RETURN_IF_ERROR(m.Receive(index, f, k, transfer, &acts[static_cast<size_t>(k)], &st));
    in.push_back({f.bottleneck(k).width(), acts[static_cast<size_t>(k)].data()});
    m.bytes_by_width[static_cast<size_t>(WidthIndex(m.cfg, f.bottleneck(k).width()))] += f.bottleneck(k).codes().size();
  }
  const auto t0 = Clock::now();
  auto step = m.dec->TrainStep(in, n, labels, m.opt.split.distill);
  if (!step.ok()) return step.status();
  m.decoder_s += std::chrono::duration<double>(Clock::now() - t0).count();
  ParamSet grads;
  for (int k = 0; k < f.bottleneck_size(); ++k) {
    const double w = f.bottleneck(k).width();
    grads.specs.push_back({BottleneckGradName(w), {static_cast<int64_t>(n), BottleneckChannels(m.cfg, w), 7, 7}});
    const auto& g = step->grad[static_cast<size_t>(k)];
    grads.flat.insert(grads.flat.end(), g.begin(), g.end());
  }
  wire::ToTensors(grads, out->mutable_grad());
  out->set_loss(static_cast<float>(step->loss[0]));
  m.link_stats.Add(st);
  m.up_bytes += st.bytes;
  m.down_bytes += grads.bytes();
  m.loss_sum += step->loss[0];
  ++m.steps;
  m.samples += n;
  return Status::Ok();
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
              {"eval_s", eval_s}};
  if (ev.contains("channel_accuracy_by_width")) row["channel_accuracy_by_width"] = ev["channel_accuracy_by_width"];
  m.last_eval = row;
  m.link_stats = ByteLinkStats();
  m.up_bytes = m.down_bytes = m.head_bytes = m.steps = m.samples = 0;
  m.loss_sum = m.decoder_s = 0.0;
  m.bytes_by_width.assign(m.cfg.widths.size(), 0.0);
  return row;
}

void SplitService::MakeInference(uint32_t pass, const std::string& controller, wire::SplitInferIns* out) {
  Impl& m = *impl_;
  const auto& inf = m.opt.split.inference;
  m.pass_controller[pass] = controller;
  // One sample per request: a second OpenMP thread only adds the wait for a descheduled thread on a
  // busy machine (tens of ms), never speed.
  SetTorchThreads(1);
  out->set_pass(pass);
  if (m.opt.split.heads == "average") wire::ToTensors(m.head, out->mutable_head());
  out->set_requests(inf.requests);
  out->set_interval_ms(inf.interval_ms);
  out->set_samples_per_request(inf.samples_per_request);
  out->set_deadline_ms(inf.deadline_ms);
  out->set_controller(controller);
  out->set_fixed_width(inf.fixed_width);
  out->set_margin(inf.margin);
  out->set_initial_kbps(inf.initial_kbps);
  out->set_node_gflops(inf.node_gflops);
}

Result<json> SplitService::EndInference(const std::string& dir) {
  Impl& m = *impl_;
  SetTorchThreads(m.opt.server_threads);
  return WriteInferenceReport(dir, m.rows, m.opt.split.inference.deadline_ms, m.opt.split.inference.fixed_width);
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

Status SplitService::SaveModels(const std::string& dir) const {
  const Impl& m = *impl_;
  if (m.opt.split.heads == "average") {
    (void)m.eval_enc->SetParams(m.head);
    EDGEBED_RETURN_IF_ERROR(m.eval_enc->Save(dir + "/final_encoder.pt"));
  }
  return m.dec->Save(dir + "/final_decoder.pt");
}

Result<std::string> SplitService::SaveState() const {
  const Impl& m = *impl_;
  auto dec = m.dec->SaveTrainingState();
  if (!dec.ok()) return dec.status();
  StateWriter w;
  w.Bytes(dec.value());
  w.Floats(m.head.flat);
  w.U64(m.last_heads.size());
  for (const auto& [i, p] : m.last_heads) {
    w.U64(i);
    w.Floats(p.flat);
  }
  w.Bytes(m.last_eval.is_null() ? std::string() : m.last_eval.dump());
  return w.Take();
}

Status SplitService::LoadState(const std::string& state) {
  Impl& m = *impl_;
  StateReader r(state, "the split-learning state");
  ParamSet head = m.head;
  std::string dec, eval;
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&dec));
  EDGEBED_RETURN_IF_ERROR(r.Floats(&head.flat, head.flat.size()));
  uint64_t n = 0;
  EDGEBED_RETURN_IF_ERROR(r.U64(&n));
  if (n > m.opt.nodes)
    return Status::Corruption("the split-learning state holds " + std::to_string(n) + " encoders for " +
                              std::to_string(m.opt.nodes) + " nodes");
  std::map<uint32_t, ParamSet> last;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t i = 0;
    EDGEBED_RETURN_IF_ERROR(r.U64(&i));
    ParamSet p = m.head;
    EDGEBED_RETURN_IF_ERROR(r.Floats(&p.flat, p.flat.size()));
    if (i >= m.opt.nodes) return Status::Corruption("the split-learning state holds an encoder of node " + std::to_string(i));
    last[static_cast<uint32_t>(i)] = std::move(p);
  }
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&eval));
  if (!r.done()) return Status::Corruption("the split-learning state has bytes past its end");
  EDGEBED_RETURN_IF_ERROR(m.dec->LoadTrainingState(dec));
  m.head = std::move(head);
  m.last_heads = std::move(last);
  m.last_eval = eval.empty() ? json(nullptr) : json::parse(eval, nullptr, false);
  m.resend_heads = true;
  return Status::Ok();
}

}  // namespace edgebed
