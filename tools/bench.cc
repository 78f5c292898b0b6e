#include "tools/bench.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <zmq.hpp>

#include <complex>
// clang-format off
#include <liquid/liquid.h>
// clang-format on

#include "channel/analog_ota.h"
#include "channel/fading.h"
#include "codecs/curve.h"
#include "codecs/zmq_wire.h"
#include "record/progress.h"
#include "scenarios/scenario.h"
#include "server/aggregate.h"
#include "server/dp_fedavg.h"
#include "server/robust_aggregate.h"
#include "splitnets/split_training.h"  // Median
#include "tools/launcher.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;
double Secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// A 10 MB update (2,621,440 float32) in the layout of a model with a few tensors.
ParamSet MakeUpdate(size_t floats) {
  std::vector<TensorSpec> specs = {{"conv.weight", {64, 32, 3, 3}}, {"conv.bias", {64}}};
  const int64_t used = 64 * 32 * 9 + 64;
  specs.push_back({"fc.weight", {static_cast<int64_t>(floats - used)}});
  ParamSet p = ParamSet::Zeros(specs);
  for (size_t i = 0; i < p.flat.size(); ++i) p.flat[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f;
  return p;
}

// Seconds to move `burst` messages of the update from a DEALER to a ROUTER over TCP loopback.
// protocol = false: raw ZeroMQ frames of the same size, sent without a copy (the update outlives the
// burst); true: edgebed's path, as a node sends its update: a FitRes Envelope with the update's data
// attached as a frame of its own (no copy), then on the server decode, copy into the ParamSet and
// check (FromTensors).
// curve: the link is CURVE (encrypted and authenticated, the server's ZAP handler admitting the key).
double TransferBurst(const ParamSet& update, int burst, bool protocol, bool curve = false) {
  // Two contexts, as node and server are two processes: each end has its own I/O thread (where
  // ZeroMQ encrypts and decrypts).
  zmq::context_t ctx(1), node_ctx(1);
  std::unique_ptr<ZapHandler> zap;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  zmq::socket_t dealer(node_ctx, zmq::socket_type::dealer);
  if (curve) {
    static const CurveKeyPair server = MakeCurveKeyPair().value(), node = MakeCurveKeyPair().value();
    const std::string allow = (std::filesystem::temp_directory_path() / "edgebed-bench.allow").string();
    std::ofstream(allow) << node.public_key << " bench-node\n";
    zap = std::make_unique<ZapHandler>(ctx, AllowList::Read(allow).value());
    MakeCurveServer(router, server);
    MakeCurveClient(dealer, node, server.public_key);
  }
  router.set(zmq::sockopt::rcvhwm, 4);
  router.bind("tcp://127.0.0.1:*");
  const std::string ep = router.get(zmq::sockopt::last_endpoint);
  dealer.set(zmq::sockopt::routing_id, std::string("bench-node"));
  dealer.set(zmq::sockopt::sndhwm, 4);
  dealer.connect(ep);
  // Warm the connection up so the handshake is not timed.
  dealer.send(zmq::str_buffer("hi"));
  zmq::message_t m;
  (void)router.recv(m);
  (void)router.recv(m);

  // What a node's training leaves: the update in a vector of its own (LocalFit moves it into the frame).
  const auto trained = std::make_shared<const std::vector<float>>(update.flat);
  const auto t0 = Clock::now();
  std::thread sender([&] {
    for (int i = 0; i < burst; ++i) {
      if (protocol) {
        wire::Envelope env;
        wire::Attachments att;
        env.set_sender("bench-node");
        auto* res = env.mutable_fit_res();
        res->set_round(1);
        res->set_num_samples(100);
        wire::AttachTensors(update.specs, trained, res->mutable_update(), &att);
        wire::SendEnvelope(dealer, env, "", /*dont_wait=*/false, &att);
      } else {  // zero-copy, as SendEnvelope hands its encoded bytes over: ZeroMQ reads the update in place
        zmq::message_t msg(const_cast<float*>(update.flat.data()), update.bytes(), nullptr, nullptr);
        dealer.send(std::move(msg), zmq::send_flags::none);
      }
    }
  });
  size_t checksum = 0;
  for (int i = 0; i < burst; ++i) {
    zmq::message_t id, payload;
    std::vector<zmq::message_t> rest;
    (void)router.recv(id);
    (void)router.recv(payload);
    wire::RecvRest(router, payload, &rest);
    if (protocol) {
      wire::Envelope env;
      ParamSet got;
      const wire::FrameViews attached = wire::Views(rest);
      Status st = wire::Decode(payload.data(), payload.size(), wire::kDefaultMaxFrameBytes, &env);
      if (st.ok()) st = wire::CheckAttached(payload.size(), attached, wire::kDefaultMaxFrameBytes);
      if (st.ok()) st = wire::FromTensors(env.fit_res().update(), "fit_res.update", &update.specs, &got, attached);
      if (!st.ok()) spdlog::error("bench transfer: {}", st.ToString());
      checksum += got.flat.size();
    } else {
      checksum += payload.size();
    }
  }
  const double s = Secs(t0, Clock::now());
  sender.join();
  if (checksum == 0) spdlog::error("bench transfer: nothing received");
  return s;
}

nlohmann::json BenchTransfer(int reps) {
  const size_t floats = (10u << 20) / sizeof(float);
  const ParamSet update = MakeUpdate(floats);
  const int burst = 8;
  std::vector<double> raw, proto, curve;
  for (int r = 0; r < reps; ++r) {  // interleaved so all see the same machine load
    raw.push_back(TransferBurst(update, burst, false));
    proto.push_back(TransferBurst(update, burst, true));
    curve.push_back(TransferBurst(update, burst, true, /*curve=*/true));
  }
  const double mb = static_cast<double>(update.bytes()) * burst / 1e6;
  const double raw_mbs = mb / Median(raw), proto_mbs = mb / Median(proto), curve_mbs = mb / Median(curve);
  spdlog::info("transfer  10 MB update node->server, TCP loopback, median of {}:", reps);
  spdlog::info("          raw ZeroMQ frames, zero-copy {:8.0f} MB/s", raw_mbs);
  spdlog::info("          edgebed FitRes (encode+check) {:8.0f} MB/s  = {:.0f}% of raw (target >= 90%)", proto_mbs,
               100.0 * proto_mbs / raw_mbs);
  spdlog::info("          the same over CURVE          {:8.0f} MB/s  = {:.0f}% of unencrypted (target >= 80%)", curve_mbs,
               100.0 * curve_mbs / proto_mbs);
  return {{"raw_MBps", raw_mbs}, {"protocol_MBps", proto_mbs}, {"ratio", proto_mbs / raw_mbs}, {"curve_MBps", curve_mbs},
          {"curve_ratio", curve_mbs / proto_mbs}};
}

// Each aggregation rule over k = 10 updates of 10 MB of float32, one core: GB/s of updates folded.
// The mean and DP-FedAvg stream (one accumulator, O(model) memory); the robust rules hold all k
// updates (O(k x model)), which is what they cost in server memory too.
nlohmann::json BenchAggregate(int reps) {
  const size_t n = (10u << 20) / sizeof(float);
  const int k = 10;
  std::vector<std::vector<float>> updates(k, std::vector<float>(n));
  for (int j = 0; j < k; ++j)
    for (size_t i = 0; i < n; ++i) updates[j][i] = static_cast<float>((i + j) % 977) * 1e-3f;
  const std::vector<double> weights = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109};
  const double gb = static_cast<double>(k) * n * sizeof(float) / 1e9;
  auto rate = [&](const std::function<void()>& fold) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      fold();
      t.push_back(Secs(t0, Clock::now()));
    }
    return gb / Median(t);
  };
  std::vector<float> out(n), copy(n);
  WeightedMean mean;
  const double cpy_gbs = rate([&] {
    for (int j = 0; j < k; ++j) std::memcpy(copy.data(), updates[j].data(), n * sizeof(float));
  });
  const double mean_gbs = rate([&] {
    mean.Reset(n);
    for (int j = 0; j < k; ++j) mean.Add(updates[j].data(), n, weights[j]);
    mean.Mean(out.data());
  });
  spdlog::info("aggregate {} x 10 MB float32 updates, one core, median of {} (GB/s of updates folded):", k, reps);
  spdlog::info("          memcpy of the same bytes            {:6.2f} GB/s (memory ceiling)", cpy_gbs);
  spdlog::info("          mean (FedAvg, streaming)            {:6.2f} GB/s (target >= 2 GB/s)", mean_gbs);
  nlohmann::json res = {{"memcpy_GBps", cpy_gbs}, {"fedavg_GBps", mean_gbs}, {"check", out[12345]}};
  DpOptions dpo;
  dpo.clip_norm = 1.0;
  dpo.noise_multiplier = 1.0;
  dpo.expected_nodes = k;
  auto dp = DpAggregator::Create(dpo);
  if (dp.ok()) {
    const double dp_gbs = rate([&] {
      dp->BeginRound(n);
      for (int j = 0; j < k; ++j) dp->Add(updates[j]);
      (void)dp->Finish(1);
    });
    spdlog::info("          dp_fedavg (clip + noise, streaming) {:6.2f} GB/s", dp_gbs);
    res["dp_fedavg_GBps"] = dp_gbs;
  }
  std::vector<float> clipped(n);
  const double nb_gbs = rate([&] {  // norm_bound as the strategy runs it: each update clipped, then the mean
    mean.Reset(n);
    for (int j = 0; j < k; ++j) {
      std::memcpy(clipped.data(), updates[j].data(), n * sizeof(float));
      ClipToNorm(&clipped, 100.0);
      mean.Add(clipped.data(), n, weights[j]);
    }
    mean.Mean(out.data());
  });
  spdlog::info("          norm_bound (clip + mean, streaming) {:6.2f} GB/s", nb_gbs);
  res["norm_bound_GBps"] = nb_gbs;
  for (const std::string rule : {"median", "trimmed_mean", "krum", "multi_krum", "bulyan"}) {
    RobustOptions ro;
    ro.rule = rule;
    ro.byzantine = 1;  // bulyan needs k >= 4f + 3 = 7
    ro.trim_fraction = 0.2;
    ro.clip_norm = 100.0;
    bool ok = true;
    const double gbs = rate([&] { ok = ok && RobustAggregate(updates, weights, ro).ok(); });
    if (!ok) {
      res[rule + "_GBps"] = nullptr;
      continue;
    }
    spdlog::info("          {:<35} {:6.2f} GB/s (holds all {} updates)", rule, gbs, k);
    res[rule + "_GBps"] = gbs;
  }
  return res;
}

// Output samples per second: liquid-dsp's channel_cccf adding AWGN to one signal, against edgebed's
// superposition of K = 10 device signals, each with its own fading coefficient, plus noise.
nlohmann::json BenchChannel(int reps) {
  const size_t n = 1 << 18;
  const int k = 10;
  ComplexGaussian g(DeriveSeed(1, "bench-channel"));
  std::vector<std::vector<cfloat>> x(k, std::vector<cfloat>(n));
  for (auto& v : x)
    for (auto& s : v) s = g.Next();
  std::vector<cfloat> y(n);
  channel_cccf ch = channel_cccf_create();
  channel_cccf_add_awgn(ch, -10.0f, 10.0f);
  std::vector<double> liquid_s, ours_s;
  std::vector<const cfloat*> ptrs;
  for (auto& v : x) ptrs.push_back(v.data());
  for (int r = 0; r < reps; ++r) {  // interleaved
    auto t0 = Clock::now();
    channel_cccf_execute_block(ch, reinterpret_cast<liquid_float_complex*>(x[0].data()), n,
                               reinterpret_cast<liquid_float_complex*>(y.data()));
    liquid_s.push_back(Secs(t0, Clock::now()));
    std::vector<cfloat> gains;
    for (int j = 0; j < k; ++j) gains.push_back(DrawFading("rayleigh", 0.0, g));
    t0 = Clock::now();
    SuperposeSignals(ptrs, gains, n, 0.3f, g, y.data());
    ours_s.push_back(Secs(t0, Clock::now()));
  }
  channel_cccf_destroy(ch);
  const double liquid_msps = n / Median(liquid_s) / 1e6, ours_msps = n / Median(ours_s) / 1e6;
  spdlog::info("channel   output samples per second, one core, median of {}:", reps);
  spdlog::info("          liquid-dsp channel_cccf, AWGN on 1 signal       {:6.1f} Msps", liquid_msps);
  spdlog::info("          edgebed K = 10 signals, fading + sum + AWGN      {:6.1f} Msps = {:.0f}% (target >= 50%)",
               ours_msps, 100.0 * ours_msps / liquid_msps);
  return {{"liquid_awgn_Msps", liquid_msps}, {"superpose_k10_Msps", ours_msps}, {"ratio", ours_msps / liquid_msps}};
}

// Server memory against the population: the same scenario with 100 and with 1,000 simulated nodes,
// 5% selected per round; the server's peak RSS per round from metrics.jsonl.
nlohmann::json BenchPopulation(int rounds, const std::string& exe) {
  nlohmann::json out;
  for (uint32_t n : {100u, 1000u}) {
    const std::string dir = "runs/bench-population-" + std::to_string(n);
    auto sc = ParseScenario(
        DefaultScenarioText(),
        {"name=\"bench-population\"", "output_dir=\"" + dir + "\"", "model.name=mlp", "federation.nodes=" + std::to_string(n),
         "population.simulated=" + std::to_string(n), "population.hosts=2", "federation.fraction=0.05",
         "federation.rounds=" + std::to_string(rounds), "training.batch_size=16",
         "population.profiles=\"rpi4:0.4,pi-zero-2:0.3,phone:0.3\"", "population.availability=markov"},
        "<bench population>");
    if (!sc.ok()) return {{"error", sc.status().message()}};
    const auto t0 = Clock::now();
    if (RunFederation(sc.value(), exe) != 0) return {{"error", "the federation failed"}};
    const double wall = Secs(t0, Clock::now());
    std::ifstream in(dir + "/metrics.jsonl");
    double first_peak = 0, last_peak = 0, acc = 0, vclock = 0;
    for (std::string line; std::getline(in, line);) {
      auto row = nlohmann::json::parse(line);
      if (row["round"].get<int>() == 0) continue;
      if (first_peak == 0) first_peak = row["server_peak_rss_mb"];
      last_peak = row["server_peak_rss_mb"];
      acc = row["test_accuracy"];
      vclock = row.value("virtual_clock_s", 0.0);
    }
    spdlog::info("population {:>5} simulated nodes, {} rounds: wall {:.1f} s, server peak RSS {:.1f} MB after round 1, "
                 "{:.1f} MB at the end; accuracy {:.4f}, virtual clock {:.1f} s",
                 n, rounds, wall, first_peak, last_peak, acc, vclock);
    out[std::to_string(n)] = {{"wall_s", wall}, {"peak_rss_mb_round1", first_peak}, {"peak_rss_mb_end", last_peak},
                              {"test_accuracy", acc}, {"virtual_clock_s", vclock}};
  }
  const double r = out["1000"]["peak_rss_mb_end"].get<double>() / out["100"]["peak_rss_mb_end"].get<double>();
  spdlog::info("population server peak RSS, 1,000 vs 100 nodes: {:.3f}x (target within 10%)", r);
  out["rss_ratio_1000_vs_100"] = r;
  return out;
}

}  // namespace

int RunBench(const BenchOptions& opt, const std::string& exe) {
  nlohmann::json out;
  const std::vector<std::pair<std::string, std::function<nlohmann::json()>>> parts = {
      {"transfer", [&] { return BenchTransfer(opt.reps); }},
      {"aggregate", [&] { return BenchAggregate(opt.reps); }},
      {"channel", [&] { return BenchChannel(opt.reps); }},
      {"overhead", [&] { return BenchOverhead(opt.overhead_rounds, exe); }},
      {"population", [&] { return BenchPopulation(opt.population_rounds, exe); }},
      {"memory", [&] { return BenchMemory(opt.memory_rounds, opt.memory_uplinks, exe); }},
      {"split", [&] { return BenchSplit(opt.split_scenario, opt.split_rounds, exe); }}};
  Progress progress("bench", opt.which == "all" ? static_cast<double>(parts.size()) : 1.0, "parts done", 0.0,
                    /*live=*/false);  // a line per part
  double done = 0;
  for (const auto& [name, run] : parts) {
    if (opt.which != name && opt.which != "all") continue;
    progress.Update(done++, "next: " + name);
    out[name] = run();
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}

}  // namespace edgebed
