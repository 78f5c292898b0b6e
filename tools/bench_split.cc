// `edgebed bench split`: split learning's round time, side by side in one run, on the scenario
// scenarios/split.toml (or --split-scenario): as it ran before (the decoder serving one node's batch
// per step on server.threads, float32 gradients), as it runs now (one decoder step over every node
// waiting, 8-bit gradients, one decoder thread while the nodes train), and now with float32
// gradients, for the 8 bits' effect on accuracy. Each run goes through `edgebed run`'s own launcher.
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scenarios/scenario.h"
#include "tools/bench.h"
#include "tools/launcher.h"

namespace edgebed {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct SplitVariant {
  std::string name, what;
  std::vector<std::string> overrides;
};

// Per-round means and the last round's accuracy by width, from the run's metrics.jsonl.
json Digest(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  json last, sums = json::object();
  size_t rounds = 0;
  for (std::string line; std::getline(in, line);) {
    auto row = json::parse(line, nullptr, false);
    if (!row.is_object() || row.value("round", 0) == 0) continue;
    ++rounds;
    for (const char* k : {"wall_s", "decoder_s", "eval_s", "decoder_steps", "steps", "downlink_gradient_bytes",
                          "uplink_bottleneck_bytes", "gradient_quant_nmse"})
      sums[k] = sums.value(k, 0.0) + row.value(k, 0.0);
    last = row;
  }
  if (rounds == 0) return {{"error", dir + "/metrics.jsonl has no round"}};
  json out = {{"rounds", rounds}, {"accuracy_by_width", last["accuracy_by_width"]}};
  for (const auto& [k, v] : sums.items()) out[k + "_per_round"] = v.get<double>() / static_cast<double>(rounds);
  out["nodes_per_decoder_step"] = sums.value("steps", 0.0) / std::max(1.0, sums.value("decoder_steps", 0.0));
  return out;
}

}  // namespace

json BenchSplit(const std::string& scenario, int rounds, const std::string& exe) {
  const std::vector<SplitVariant> variants = {
      {"before", "one node's batch per decoder step, float32 gradients, decoder on server.threads",
       {"split.batch_nodes=1", "split.gradient_bits=32", "split.decoder_threads=2"}},
      {"now", "one decoder step over the waiting nodes, 8-bit gradients, one decoder thread", {}},
      {"now_float32", "as now, with float32 gradients", {"split.gradient_bits=32"}}};
  json out = {{"scenario", scenario}, {"rounds", rounds}};
  for (const auto& v : variants) {
    std::vector<std::string> o = v.overrides;
    o.push_back("federation.rounds=" + std::to_string(rounds));
    o.push_back("output_dir=\"runs/bench-split/" + v.name + "\"");
    o.push_back("split.inference.requests=0");
    auto sc = LoadScenario(scenario, o);
    if (!sc.ok()) return {{"error", sc.status().message()}};
    spdlog::info("split {}: {} ({} rounds of {})", v.name, v.what, rounds, scenario);
    const auto t0 = Clock::now();
    if (RunFederation(sc.value(), exe) != 0) return {{"error", "the " + v.name + " run failed; see " + sc->output_dir}};
    json d = Digest(sc->output_dir);
    d["what"] = v.what;
    d["end_to_end_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
    out[v.name] = d;
    if (d.contains("error")) return out;
    std::string acc;
    for (const auto& [w, a] : d["accuracy_by_width"].items()) acc += fmt::format(" {}:{:.4f}", w, a.get<double>());
    spdlog::info("split {}: round {:.1f} s (decoder {:.1f} s over {:.0f} steps, {:.1f} nodes per step; evaluation {:.1f} s), "
                 "downlink {:.1f} MB per round, end to end {:.1f} s; accuracy by width after round {}:{}",
                 v.name, d["wall_s_per_round"].get<double>(), d["decoder_s_per_round"].get<double>(),
                 d["decoder_steps_per_round"].get<double>(), d["nodes_per_decoder_step"].get<double>(),
                 d["eval_s_per_round"].get<double>(), d["downlink_gradient_bytes_per_round"].get<double>() / 1e6,
                 d["end_to_end_s"].get<double>(), rounds, acc);
  }
  const double speedup = out["before"]["wall_s_per_round"].get<double>() / out["now"]["wall_s_per_round"].get<double>();
  out["round_speedup"] = speedup;
  spdlog::info("split: a round {:.2f}x faster than before (target 4x); 8-bit gradients lose {:.2e} of the gradient's "
               "power (NMSE)", speedup, out["now"].value("gradient_quant_nmse_per_round", 0.0));
  return out;
}

}  // namespace edgebed
