// Every aggregation rule, server optimiser, SCAFFOLD's and FedBuff's server step against an
// independent reference: tests/server/reference/strategy_reference.py (plain Python, float64, from
// the papers' definitions) wrote the inputs and expected outputs into strategy_reference.json:
//   python3 tests/server/reference/strategy_reference.py > tests/server/reference/strategy_reference.json
// edgebed computes in float32 with double accumulators: agreement to 1e-5 relative (the float32
// rounding of inputs of size ~20 and three optimiser steps), 1e-6 absolute.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server/async_schedule.h"
#include "server/robust_aggregate.h"
#include "server/server_optimizer.h"
#include "server/strategy.h"

using namespace edgebed;
using nlohmann::json;

namespace {

const json& Ref() {
  static const json ref = [] {
    std::ifstream in(std::string(EDGEBED_SOURCE_DIR) + "/tests/server/reference/strategy_reference.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return ref;
}

std::vector<float> Floats(const json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

void CheckClose(const std::vector<float>& got, const json& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    const double w = want[i].get<double>();
    CHECK(std::fabs(got[i] - w) <= 1e-6 + 1e-5 * std::fabs(w));
  }
}

}  // namespace

TEST_CASE("robust rules against the Python reference: median, trimmed mean, Krum, Multi-Krum, Bulyan, norm bounding, mean") {
  std::vector<std::vector<float>> updates;
  for (const auto& u : Ref()["updates"]) updates.push_back(Floats(u));
  const std::vector<double> weights = Ref()["weights"].get<std::vector<double>>();
  for (const auto& [rule, spec] : Ref()["rules"].items()) {
    CAPTURE(rule);
    RobustOptions o;
    o.rule = rule;
    o.byzantine = spec.value("byzantine", 0u);
    o.trim_fraction = spec.value("trim_fraction", 0.1);
    o.clip_norm = spec.value("clip_norm", 0.0);
    std::vector<size_t> chosen;
    auto out = RobustAggregate(updates, weights, o, &chosen);
    REQUIRE(out.ok());
    CheckClose(out.value(), spec["expected"]);
    if (rule == "krum" || rule == "multi_krum" || rule == "bulyan")
      CHECK(chosen == Ref()[rule + "_keep"].get<std::vector<size_t>>());
    // The same through a FedAvg strategy, as the server folds updates in one at a time (the mean and
    // norm_bound stream; the others keep the round's updates): from x = 0 the step is the aggregate.
    StrategyOptions so;
    so.robust = o;
    auto s = MakeStrategy(so);
    REQUIRE(s.ok());
    ParamSet zero = ParamSet::Zeros({{"w", {static_cast<int64_t>(updates[0].size())}}});
    s.value()->BeginRound(1, zero);
    for (size_t i = 0; i < updates.size(); ++i) {
      FitResult f;
      f.node_id = "n" + std::to_string(i);
      f.update = zero;
      f.update.flat = updates[i];
      f.num_samples = static_cast<uint64_t>(weights[i]);
      REQUIRE(s.value()->Accumulate(f).ok());
    }
    auto next = s.value()->AggregateFit(1, zero, {});
    REQUIRE(next.ok());
    CheckClose(next->flat, spec["expected"]);
  }
}

TEST_CASE("server optimisers against the Python reference: three steps of FedAvgM, FedAdagrad, FedAdam, FedYogi") {
  const json& r = Ref();
  for (const auto& [kind, want] : r["optimisers"].items()) {
    CAPTURE(kind);
    ServerOptimizerOptions o;
    o.kind = kind;
    o.lr = r["lr"];
    o.beta1 = r["beta1"];
    o.beta2 = r["beta2"];
    o.tau = r["tau"];
    o.momentum = r["momentum"];
    auto opt = ServerOptimizer::Create(o);
    REQUIRE(opt.ok());
    std::vector<float> x = Floats(r["x0"]);
    for (const auto& d : r["deltas"]) REQUIRE(opt.value()->Step(Floats(d), &x).ok());
    CheckClose(x, want);
  }
}

TEST_CASE("SCAFFOLD's and FedBuff's server steps against the Python reference") {
  const json& r = Ref();
  const std::vector<float> x0 = Floats(r["x0"]);
  ParamSet g = ParamSet::Zeros({{"w", {static_cast<int64_t>(x0.size())}}});
  g.flat = x0;
  {
    StrategyOptions so;
    so.name = "scaffold";
    so.num_nodes = r["scaffold"]["nodes"];
    auto s = MakeStrategy(so).value();
    s->BeginRound(1, g);
    for (size_t i = 0; i < 3; ++i) {
      FitResult f;
      f.node_id = "n" + std::to_string(i);
      f.update = g;
      f.update.flat = Floats(r["updates"][i]);
      f.num_samples = 100 * (i + 1);  // SCAFFOLD's mean is unweighted: the counts must not matter
      f.control_delta = Floats(r["scaffold"]["controls"][i]);
      REQUIRE(s->Accumulate(f).ok());
    }
    auto next = s->AggregateFit(1, g, {});
    REQUIRE(next.ok());
    CheckClose(next->flat, r["scaffold"]["x"]);
    CheckClose(*s->FitControl(), r["scaffold"]["c"]);
  }
  {
    StrategyOptions so;
    so.name = "fedbuff";
    so.server.lr = r["fedbuff"]["lr"];
    auto s = MakeStrategy(so).value();
    s->BeginRound(1, g);
    const auto stale = r["fedbuff"]["staleness"].get<std::vector<uint32_t>>();
    for (size_t i = 0; i < stale.size(); ++i) {
      FitResult f;
      f.node_id = "n" + std::to_string(i);
      f.update = g;
      f.update.flat = Floats(r["updates"][4 + i]);
      f.num_samples = 10 + i;
      const double w = StalenessWeight("sqrt", stale[i]);  // what the server applies before Accumulate
      for (float& v : f.update.flat) v = static_cast<float>(v * w);
      REQUIRE(s->Accumulate(f).ok());
    }
    auto next = s->AggregateFit(1, g, {});
    REQUIRE(next.ok());
    CheckClose(next->flat, r["fedbuff"]["x"]);
  }
}
