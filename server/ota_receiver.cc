#include "server/ota_receiver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "codecs/count_data.h"
#include "codecs/rng.h"

namespace edgebed {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
double Since(std::chrono::steady_clock::time_point t);

Result<std::unique_ptr<OtaReceiver>> OtaReceiver::Create(const OtaReceiverOptions& opt, Uplink* uplink,
                                                         const ParamSet& layout) {
  if (!uplink->superposes() && !uplink->carries_codewords()) return std::unique_ptr<OtaReceiver>();
  std::unique_ptr<OtaReceiver> r(new OtaReceiver(opt, uplink, layout));
  if (uplink->carries_codewords()) EDGEBED_RETURN_IF_ERROR(r->SetUpDigitalOta());
  return r;
}

OtaReceiver::OtaReceiver(const OtaReceiverOptions& opt, Uplink* uplink, const ParamSet& layout)
    : opt_(opt), uplink(uplink), specs_(layout.specs), model_values_(layout.flat.size()) {}
OtaReceiver::~OtaReceiver() = default;

Status OtaReceiver::BeginRound(uint32_t round, const ParamSet& global, wire::FitIns* ins) {
  ota_updates.clear();
  vq_answers.clear();
  fit_s_ = 0.0;
  if (!uplink->carries_codewords()) return Status::Ok();
  const auto t0 = std::chrono::steady_clock::now();
  Status st = FitRoundCodebook(round, global);
  auto* v = ins->mutable_vq();
  v->set_size(vq.size);
  v->set_block_length(vq.block_length);
  v->mutable_centroids()->Assign(vq.centroids.begin(), vq.centroids.end());
  v->set_error_feedback(opt_.ota.error_feedback);
  fit_s_ = Since(t0);
  return st;
}

void OtaReceiver::HoldIndices(uint32_t node_index, std::vector<uint32_t> indices) {
  vq_answers.push_back({node_index, std::move(indices)});
}

void OtaReceiver::HoldUpdate(FitResult r) { ota_updates.push_back(std::move(r)); }

OtaRoundResult OtaReceiver::CloseRound(uint32_t round, Strategy& strategy, LinkAccounting& link) {
  OtaRoundResult res;
  // The channel sums in the order it is given: by node index, not by arrival, so that one scenario
  // and one seed give the same round however the nodes' answers raced (and a resumed run replays it).
  std::stable_sort(ota_updates.begin(), ota_updates.end(),
                   [](const FitResult& a, const FitResult& b) { return a.node_index < b.node_index; });
  std::stable_sort(vq_answers.begin(), vq_answers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (!ota_updates.empty()) {
    res = Superpose(round, strategy, link);
    res.held = true;
  } else if (!vq_answers.empty()) {
    res = DecodeCounts(round, strategy, link);
    res.held = true;
  }
  if (uplink->carries_codewords() && !res.info.is_null()) res.info["codebook_fit_s"] = fit_s_;
  return res;
}

// Digital OTA: the answer is one VQ index per block of this round's codebook, and no update.
Status OtaReceiver::CheckIndices(const wire::FitRes& res) const {
  if (!uplink->carries_codewords())
    return Status::InvalidArgument("fit_res.vq_indices is for channel.uplink = digital_ota; this run's uplink takes fit_res.update");
  if (res.update_size() > 0) return Status::InvalidArgument("digital OTA: answer with fit_res.vq_indices, not fit_res.update");
  if (vq.block_length == 0 || vq.size == 0) return Status::InvalidArgument("digital OTA: the server has no codebook this round");
  const size_t blocks = NumBlocks(model_values_, vq.block_length);
  if (static_cast<size_t>(res.vq_indices_size()) != blocks)
    return Status::InvalidArgument("fit_res.vq_indices holds " + std::to_string(res.vq_indices_size()) +
                                   " indices, expected " + std::to_string(blocks) + " (one per block of " +
                                   std::to_string(vq.block_length) + " of the model's " +
                                   std::to_string(model_values_) + " values)");
  for (uint32_t i : res.vq_indices())
    if (i >= vq.size)
      return Status::InvalidArgument("fit_res.vq_indices holds " + std::to_string(i) + ", allowed [0, " +
                                     std::to_string(vq.size - 1) + "]");
  return Status::Ok();
}


// Fits this round's VQ codebook (k-means++) on the server's own update: one local round on its
// proxy samples from the global model, as a node would train.
Status OtaReceiver::FitRoundCodebook(uint32_t r, const ParamSet& global) {
  EDGEBED_RETURN_IF_ERROR(proxy_learner->SetParams(global));
  TrainOptions t = opt_.proxy_training;
  t.seed = DeriveSeed(opt_.seed, "vq-proxy-train", r);
  EDGEBED_RETURN_IF_ERROR(proxy_learner->Train(proxy_data, proxy_indices, t).status());
  ParamSet upd = proxy_learner->GetParams();
  for (size_t i = 0; i < upd.flat.size(); ++i) upd.flat[i] -= global.flat[i];
  KMeansOptions k;
  k.size = opt_.ota.codebook_size;
  k.block_length = opt_.ota.block_length;
  k.iterations = opt_.ota.kmeans_iterations;
  Rng rng = MakeRng(opt_.seed, "vq-kmeans", r);
  auto q = FitCodebook(upd.flat.data(), upd.flat.size(), k, rng);
  if (!q.ok()) return q.status();
  vq = std::move(q.value());
  return Status::Ok();
}


// All of the round's codewords cross the channel at once; the decoder recovers the count vector
// of every block and the symmetric function of the nodes' quantised updates follows from it.
OtaRoundResult OtaReceiver::DecodeCounts(uint32_t round, Strategy& strategy, LinkAccounting& link) {
  OtaRoundResult res;
  json& ota_info = res.info;
  const auto t0 = Clock::now();
  std::vector<UraInput> in;
  for (const auto& [node, idx] : vq_answers) in.push_back({node, &idx});
  UraCode code{&ura_code, vq.size, ura_d, static_cast<uint32_t>(std::ceil(std::log2(static_cast<double>(vq.size))))};
  auto rx = uplink->SuperposeCodewords(round, in, code, &link);
  if (!rx.ok()) {
    spdlog::warn("round {}: {}", round, rx.status().message());
    ota_info = {{"active", 0}};
    vq_answers.clear();
    return res;
  }
  const size_t N = model_values_, S = NumBlocks(N, vq.block_length), n = vq.size;
  // What the channel summed, known to the simulation (never to the decoder): the true counts.
  std::vector<int32_t> truth(S * n, 0);
  std::set<uint32_t> active(rx->active_nodes.begin(), rx->active_nodes.end());
  for (const auto& [node, idx] : vq_answers)
    if (active.count(node))
      for (size_t s = 0; s < S; ++s) ++truth[s * n + idx[s]];
  const uint32_t ka = static_cast<uint32_t>(active.size());
  std::vector<int32_t> counts = truth;
  std::vector<float> soft;  // the decoder's estimate before rounding (mean with ota.soft_mean)
  uint32_t k_hat = ka;
  ota_info = {{"active", ka}, {"decoder", decoder ? decoder->name() : "exact"}, {"noise_var", rx->noise_var},
              {"rho0_w", rx->rho0}, {"blocks", S}};
  if (decoder) {
    CountProblem p;
    p.y = rx->y.data();
    p.blocks = S;
    p.noise_var = rx->noise_var;
    p.k_max = static_cast<uint32_t>(vq_answers.size());
    p.popularity = vq.popularity.data();
    auto est = decoder->Decode(p);
    if (!est.ok()) {
      spdlog::error("round {}: decoding failed: {}", round, est.status().message());
      vq_answers.clear();
      return res;
    }
    counts = std::move(est->counts);
    soft = std::move(est->raw);
    k_hat = est->k_hat;
    double err = 0, ref = 0;
    size_t exact = 0;
    for (size_t s = 0; s < S; ++s) {
      bool same = true;
      for (size_t i = 0; i < n; ++i) {
        const double e = counts[s * n + i] - truth[s * n + i];
        err += e * e;
        ref += static_cast<double>(truth[s * n + i]) * truth[s * n + i];
        same &= e == 0;
      }
      exact += same;
    }
    ota_info["k_hat"] = est->k_hat;
    ota_info["count_nmse"] = ref > 0 ? err / ref : 0.0;
    ota_info["exact_blocks"] = static_cast<double>(exact) / static_cast<double>(S);
    ota_info["decode_s"] = est->seconds;
    ota_info["decode_gflop"] = est->flops / 1e9;
  }
  FitResult agg;
  agg.node_id = "ota-aggregate";
  agg.update.specs = specs_;
  agg.update.flat.resize(N);
  Status st = Status::Ok();
  if (symmetric.fn == SymmetricFn::kMean && opt_.ota.soft_mean && !soft.empty())
    MeanFromSoftCounts(vq, soft.data(), k_hat, N, agg.update.flat.data());
  else
    st = AggregateCounts(vq, counts.data(), N, symmetric, agg.update.flat.data());
  if (st.ok() && decoder) {  // how far the decoded aggregate is from the error-free one
    std::vector<float> ideal(N);
    (void)AggregateCounts(vq, truth.data(), N, symmetric, ideal.data());
    double e = 0, r0 = 0;
    for (size_t i = 0; i < N; ++i) {
      e += (agg.update.flat[i] - ideal[i]) * static_cast<double>(agg.update.flat[i] - ideal[i]);
      r0 += static_cast<double>(ideal[i]) * ideal[i];
    }
    ota_info["aggregate_nmse"] = r0 > 0 ? e / r0 : 0.0;
  }
  agg.num_samples = std::max<uint32_t>(1, ka);
  if (st.ok()) st = strategy.Accumulate(agg);
  if (!st.ok()) spdlog::error("round {}: {}", round, st.ToString());
  res.delivered = true;
  if (!opt_.ota.collect.empty()) {
    CountRound cr;
    cr.round = round;
    cr.nodes = static_cast<uint32_t>(vq_answers.size());
    cr.blocks = static_cast<uint32_t>(S);
    cr.block_length = vq.block_length;
    cr.popularity = vq.popularity;
    cr.centroids = vq.centroids;
    for (const auto& [node, idx] : vq_answers)
      for (uint32_t i : idx) cr.indices.push_back(static_cast<uint16_t>(i));
    Status cs = n <= 65536 ? AppendCountRound(opt_.ota.collect, vq.size, cr) : Status::InvalidArgument("codebook too large");
    if (!cs.ok()) spdlog::error("ota.collect: {}", cs.message());
  }
  ota_info["ota_s"] = Since(t0);
  vq_answers.clear();
  return res;
}

// All accepted updates cross the superposing channel together; the strategy sees one update, the
// channel's estimate of their mean, weighted by the number of nodes that transmitted.
OtaRoundResult OtaReceiver::Superpose(uint32_t round, Strategy& strategy, LinkAccounting& link) {
  OtaRoundResult res;
  json& ota_info = res.info;
  std::vector<OtaInput> in;
  for (const auto& r : ota_updates) in.push_back({r.node_index, &r.update.flat});
  auto out = uplink->Superpose(round, in, &link);
  if (!out.ok()) {
    spdlog::warn("round {}: {}", round, out.status().message());
    ota_info = {{"active", 0}};  // nothing reached the server
    ota_updates.clear();
    return res;
  }
  const OtaOutput& o = out.value();
  res.delivered = true;  // all transmit together once the last has trained
  ota_info = {{"active", o.active},
              {"rho0_w", o.rho0},
              {"noise_w", o.noise_power},
              {"expected_mse", o.scale * o.scale * o.noise_power / (o.rho0 * o.active * o.active)}};
  FitResult agg;
  agg.node_id = "ota-aggregate";
  agg.update.specs = specs_;
  agg.update.flat = o.mean;
  agg.num_samples = o.active;
  Status st = strategy.Accumulate(agg);
  if (!st.ok()) spdlog::error("round {}: {}", round, st.ToString());
  ota_updates.clear();
  return res;
}

Status OtaReceiver::SetUpDigitalOta() {
  const OtaConfig& o = opt_.ota;
  auto fn = ParseSymmetricFn(o.aggregate);
  if (!fn.ok()) return fn.status();
  symmetric.fn = fn.value();
  symmetric.trim = o.trim;
  ura_d = o.code_length;
  if (o.decoder == "amp_da") {
    AmpDaOptions a;
    a.iterations = o.amp_iterations;
    a.damping = o.amp_damping;
    auto amp = MakeAmpDa(o.codebook_size, o.code_length, DeriveSeed(opt_.seed, "ura-code"), a);
    if (!amp.ok()) return Status::InvalidArgument("ota: " + amp.status().message());
    decoder = std::move(amp).value();
  } else if (o.decoder == "amp_da_net") {
    const std::string path = o.decoder_path.empty() ? DefaultDecoderPath() : o.decoder_path;
    auto net = LoadAmpDaNet(path);
    if (!net.ok()) return Status::InvalidArgument("ota.decoder_path: " + net.status().message());
    if (net.value()->n() != o.codebook_size)
      return Status::InvalidArgument("ota.codebook_size = " + std::to_string(o.codebook_size) + " but the decoder " + path +
                                     " was trained for n = " + std::to_string(net.value()->n()));
    decoder = std::move(net.value());
    ura_d = decoder->d();  // the learned code's length
  }
  if (decoder) {
    ura_code = decoder->codebook();
  } else {
    Rng rng = MakeRng(opt_.seed, "ura-code");
    ura_code = RandomUnitCodebook(o.codebook_size, o.code_length, rng);
  }
  auto plan = PlanData(opt_.data);
  if (!plan.ok()) return plan.status();
  auto proxy = Learner::Create(opt_.model, opt_.seed);
  if (!proxy.ok()) return proxy.status();
  proxy_learner = std::move(proxy.value());
  const size_t rows = plan->train_rows.size();
  const size_t share = std::min<size_t>(rows, o.proxy_samples ? o.proxy_samples : rows / std::max<uint32_t>(1, opt_.nodes));
  std::vector<uint32_t> all(rows);
  std::iota(all.begin(), all.end(), 0u);
  Rng rng = MakeRng(opt_.seed, "vq-proxy-samples");
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(share);  // the server's own samples: only these are read
  auto train = LoadTrainRows(plan.value(), all);
  if (!train.ok()) return train.status();
  proxy_data = std::move(train.value());
  proxy_indices.resize(share);
  std::iota(proxy_indices.begin(), proxy_indices.end(), 0u);
  spdlog::info("digital OTA: VQ blocks of {}, {} codewords of {} real channel uses, decoder {}, aggregate {}; the "
               "codebook is fitted each round on {} samples of the server's own",
               o.block_length, o.codebook_size, ura_d, decoder ? decoder->name() : "exact (error-free)", o.aggregate,
               proxy_indices.size());
  return Status::Ok();
}


}  // namespace edgebed
