// Split inference (private to server/): requests answered by the decoder at the width the node
// chose, each recorded against the deadline; the passes' report.
#include <chrono>

#include "codecs/wire.h"
#include "server/split_forward_check.h"
#include "server/split_service_impl.h"

namespace edgebed {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

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
  auto replies = TrainForwards({{index, &f}});
  if (!replies[0].ok()) return replies[0].status();
  *out = std::move(replies[0]).value();
  return Status::Ok();
}

void SplitService::MakeInference(uint32_t pass, const std::string& controller, wire::SplitInferIns* out) {
  Impl& m = *impl_;
  const auto& inf = m.opt.split.inference;
  m.pass_controller[pass] = controller;
  // One sample per request: a second OpenMP thread only adds the wait for a descheduled thread on a
  // busy machine (tens of ms), never speed.
  m.Threads(1);
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
  m.Threads(m.opt.server_threads);
  return WriteInferenceReport(dir, m.rows, m.opt.split.inference.deadline_ms, m.opt.split.inference.fixed_width);
}
}  // namespace edgebed
