// `edgebed bench overhead`: the default federation end to end (start to results) against the limit
// of this machine, measured in the same run: the same training and evaluation done by one plain
// libtorch process per core (`bench limit --limit-part k`), each training half of the nodes'
// partitions with one thread and the same batches, and evaluating half of the test set per round.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unistd.h>

#include "codecs/rng.h"
#include "scenarios/scenario.h"
#include "splitnets/data_files.h"
#include "splitnets/learner.h"
#include "tools/bench.h"
#include "tools/launcher.h"
#include "tools/process.h"

namespace edgebed {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int kLimitParts = 2;  // one plain process per core

Result<Scenario> OverheadScenario(int rounds) {
  return ParseScenario(DefaultScenarioText(),
                       {"federation.rounds=" + std::to_string(rounds), "output_dir=\"runs/bench-overhead\"",
                        "name=\"bench-overhead\""},
                       "<default scenario>");
}

// Nodes split into kLimitParts halves of about equal samples: largest first, each to the lightest half.
std::vector<std::vector<uint32_t>> BalancedHalves(const std::vector<std::vector<uint32_t>>& parts) {
  std::vector<uint32_t> by_size(parts.size());
  std::iota(by_size.begin(), by_size.end(), 0u);
  std::stable_sort(by_size.begin(), by_size.end(), [&](uint32_t a, uint32_t b) { return parts[a].size() > parts[b].size(); });
  std::vector<std::vector<uint32_t>> halves(kLimitParts);
  std::vector<size_t> load(kLimitParts, 0);
  for (uint32_t k : by_size) {
    const size_t h = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    halves[h].push_back(k);
    load[h] += parts[k].size();
  }
  return halves;
}

Status LimitPart(int part, int rounds, nlohmann::json* out) {
  const auto t0 = Clock::now();
  EDGEBED_ASSIGN_OR_RETURN(Scenario sc, OverheadScenario(rounds));
  SetTorchThreads(1);
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  EDGEBED_ASSIGN_OR_RETURN(auto parts, PartitionPlan(plan, ScenarioPartition(sc)));
  const std::vector<uint32_t> mine = BalancedHalves(parts)[static_cast<size_t>(part)];
  std::vector<Dataset> data;
  size_t samples = 0;
  for (uint32_t k : mine) {
    EDGEBED_ASSIGN_OR_RETURN(Dataset d, LoadTrainRows(plan, parts[k]));
    samples += d.size();
    data.push_back(std::move(d));
  }
  EDGEBED_ASSIGN_OR_RETURN(Dataset test, LoadTestSet(plan));
  std::vector<uint32_t> my_test;
  for (size_t i = static_cast<size_t>(part); i < test.size(); i += kLimitParts) my_test.push_back(static_cast<uint32_t>(i));
  EDGEBED_ASSIGN_OR_RETURN(auto learner, Learner::Create(ScenarioModel(sc, &plan), sc.seed));
  const double setup_s = Since(t0);
  double train_s = 0, eval_s = 0;
  ParamSet global = learner->GetParams();
  for (int r = 1; r <= rounds; ++r) {
    // The half's own FedAvg, so that every round trains a model like the federation's (a model
    // passed on from node to node unaveraged drifts into denormal weights and trains 2x slower).
    std::vector<double> sum(global.flat.size(), 0.0);
    for (size_t j = 0; j < mine.size(); ++j) {  // what each node is sent: the round's model and settings
      EDGEBED_RETURN_IF_ERROR(learner->SetParams(global));
      TrainOptions t = ScenarioTrainOptions(sc);
      t.seed = DeriveSeed(sc.seed, "local-train", mine[j], static_cast<uint64_t>(r));
      std::vector<uint32_t> all(data[j].size());
      std::iota(all.begin(), all.end(), 0u);
      const auto ts = Clock::now();
      EDGEBED_RETURN_IF_ERROR(learner->Train(data[j], all, t).status());
      train_s += Since(ts);
      const ParamSet trained = learner->GetParams();
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += static_cast<double>(data[j].size()) * trained.flat[i];
    }
    for (size_t i = 0; i < sum.size(); ++i) global.flat[i] = static_cast<float>(sum[i] / static_cast<double>(samples));
    EDGEBED_RETURN_IF_ERROR(learner->SetParams(global));
    const auto te = Clock::now();
    EDGEBED_RETURN_IF_ERROR(learner->Evaluate(test, &my_test).status());
    eval_s += Since(te);
  }
  *out = {{"part", part}, {"nodes", mine.size()}, {"samples", samples}, {"setup_s", setup_s}, {"train_s", train_s},
          {"eval_s", eval_s}, {"total_s", Since(t0)}};
  return Status::Ok();
}

double Sum(const std::vector<nlohmann::json>& rows, const char* key) {
  double s = 0;
  for (const auto& r : rows) s += r.value(key, 0.0);
  return s;
}

}  // namespace

int RunOverheadLimitPart(int part, int rounds) {
  nlohmann::json out;
  if (part < 0 || part >= kLimitParts) {
    spdlog::error("bench limit: --limit-part {} is outside 0..{}", part, kLimitParts - 1);
    return 2;
  }
  if (Status st = LimitPart(part, rounds, &out); !st.ok()) {
    spdlog::error("bench limit: {}", st.message());
    return 1;
  }
  std::cout << out.dump() << std::endl;
  return 0;
}

nlohmann::json BenchOverhead(int rounds, const std::string& exe) {
  auto sc = OverheadScenario(rounds);
  if (!sc.ok()) return {{"error", sc.status().message()}};
  // The limit: both plain processes at once, start to end.
  std::vector<pid_t> pids;
  std::vector<int> fds;
  const auto t_limit = Clock::now();
  for (int k = 0; k < kLimitParts; ++k) {
    int fd = -1;
    pids.push_back(SpawnToPipe({exe, "bench", "limit", "--limit-part", std::to_string(k), "--overhead-rounds",
                                std::to_string(rounds)}, &fd));
    fds.push_back(fd);
  }
  std::vector<nlohmann::json> parts;
  for (int k = 0; k < kLimitParts; ++k) {
    std::string text;
    char buf[4096];
    for (ssize_t n; fds[k] >= 0 && (n = read(fds[k], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    if (fds[k] >= 0) close(fds[k]);
    const int rc = pids[k] > 0 ? WaitExit(pids[k]) : -1;
    const auto brace = text.rfind('{');
    auto row = brace == std::string::npos ? nlohmann::json() : nlohmann::json::parse(text.substr(brace), nullptr, false);
    if (rc != 0 || !row.is_object()) return {{"error", "bench limit --limit-part " + std::to_string(k) + " failed: " + text}};
    parts.push_back(row);
  }
  const double limit_s = Since(t_limit);

  const auto t_fed = Clock::now();
  if (RunFederation(sc.value(), exe) != 0) return {{"error", "the federation failed"}};
  const double fed_s = Since(t_fed);

  // Where the federation's time goes, from its own records.
  std::ifstream in(sc->output_dir + "/metrics.jsonl");
  double joins_s = 0, rounds_s = 0, slowest_s = 0, in_round_s = 0;
  for (std::string line; std::getline(in, line);) {
    auto row = nlohmann::json::parse(line, nullptr, false);
    if (!row.is_object()) continue;
    if (row.value("round", 0) == 0) {
      joins_s = row.value("elapsed_s", 0.0);
      continue;
    }
    rounds_s += row.value("wall_s", 0.0);
    slowest_s += row.value("train_time_max_s", 0.0);
    in_round_s += row.value("overhead_s", 0.0);
  }
  std::ifstream sin(sc->output_dir + "/summary.json");
  const auto summary = nlohmann::json::parse(sin, nullptr, false);
  const double server_s = summary.is_object() ? summary.value("wall_s", 0.0) : 0.0;
  const double train_limit = std::max(parts[0].value("train_s", 0.0), parts[1].value("train_s", 0.0));
  spdlog::info("overhead  default scenario, {} rounds, end to end: federation {:.1f} s, the limit {:.1f} s "
               "(2 plain libtorch processes: setup {:.1f} / {:.1f} s, training {:.1f} / {:.1f} s, evaluation {:.1f} / {:.1f} s) "
               "-> {:+.1f}% (target <= +5%)",
               rounds, fed_s, limit_s, parts[0].value("setup_s", 0.0), parts[1].value("setup_s", 0.0),
               parts[0].value("train_s", 0.0), parts[1].value("train_s", 0.0), parts[0].value("eval_s", 0.0),
               parts[1].value("eval_s", 0.0), 100.0 * (fed_s / limit_s - 1.0));
  spdlog::info("          where the federation's time goes: outside the server's run (launch, checks, server set-up, "
               "report) {:.1f} s; start-up and joins and the round-0 evaluation {:.1f} s; rounds {:.1f} s, of which the "
               "slowest node trained {:.1f} s and the round's framework overhead was {:.1f} s; after the last round {:.1f} s",
               fed_s - server_s, joins_s, rounds_s, slowest_s, in_round_s, server_s - joins_s - rounds_s);
  spdlog::info("          the slowest node's training against half the training work on one core: {:.1f} s vs {:.1f} s",
               slowest_s, train_limit);
  return {{"federation_s", fed_s},
          {"limit_s", limit_s},
          {"overhead_vs_limit", fed_s / limit_s - 1.0},
          {"limit_parts", parts},
          {"limit_train_s_max", train_limit},
          {"limit_eval_s", Sum(parts, "eval_s")},
          {"outside_server_run_s", fed_s - server_s},
          {"joins_and_round0_s", joins_s},
          {"rounds_s", rounds_s},
          {"slowest_node_train_s", slowest_s},
          {"in_round_overhead_s", in_round_s},
          {"in_round_overhead_share", rounds_s > 0 ? in_round_s / rounds_s : 0.0}};
}

}  // namespace edgebed
