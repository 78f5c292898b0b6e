// The server optimisers against Reddi et al. 2021's Algorithm 2 and Hsu et al. 2019 worked by hand,
// the robust aggregation rules against hand-computed sets with outliers, and the strategy that
// combines them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "server/dp_accountant.h"
#include "server/dp_fedavg.h"
#include "server/robust_aggregate.h"
#include "server/server_optimizer.h"
#include "server/strategy.h"

using namespace edgebed;

namespace {

std::unique_ptr<ServerOptimizer> Opt(const std::string& kind, double lr = 1.0) {
  ServerOptimizerOptions o;
  o.kind = kind;
  o.lr = lr;
  o.beta1 = 0.9;
  o.beta2 = 0.99;
  o.tau = 0.1;
  o.momentum = 0.9;
  auto r = ServerOptimizer::Create(o);
  REQUIRE(r.ok());
  return std::move(r).value();
}

// One coordinate's step for delta after `steps` equal deltas.
double Steps(ServerOptimizer& opt, double delta, int steps) {
  std::vector<float> x = {0.0f};
  float before = 0.0f;
  for (int i = 0; i < steps; ++i) {
    before = x[0];
    REQUIRE(opt.Step({static_cast<float>(delta)}, &x).ok());
  }
  return x[0] - before;
}

std::vector<std::vector<float>> OneD(std::initializer_list<float> v) {
  std::vector<std::vector<float>> out;
  for (float x : v) out.push_back({x});
  return out;
}

}  // namespace

TEST_CASE("adaptive server optimisers: the first step is Algorithm 2's, m from 0 and v from tau^2") {
  // delta = 0.5, beta1 = 0.9, beta2 = 0.99, tau = 0.1: m1 = 0.05 and v0 = 0.01.
  CHECK(Steps(*Opt("adam"), 0.5, 1) == doctest::Approx(0.05 / (std::sqrt(0.99 * 0.01 + 0.01 * 0.25) + 0.1)).epsilon(1e-5));
  CHECK(Steps(*Opt("adagrad"), 0.5, 1) == doctest::Approx(0.05 / (std::sqrt(0.01 + 0.25) + 0.1)).epsilon(1e-5));
  // Yogi: v1 = v0 - (1 - beta2) delta^2 sign(v0 - delta^2) = 0.01 + 0.0025.
  CHECK(Steps(*Opt("yogi"), 0.5, 1) == doctest::Approx(0.05 / (std::sqrt(0.0125) + 0.1)).epsilon(1e-5));
  // The server learning rate scales the step.
  CHECK(Steps(*Opt("adam", 0.1), 0.5, 1) == doctest::Approx(0.1 * 0.05 / (std::sqrt(0.0124) + 0.1)).epsilon(1e-5));
}

TEST_CASE("adaptive server optimisers under a constant update approach lr |delta| / (|delta| + tau)") {
  // m -> delta and v -> delta^2 (Adam, Yogi): the step tends to lr delta / (|delta| + tau).
  // Yogi's v moves by (1 - beta2) delta^2 every step, so near delta^2 it stays within about
  // +-(1 - beta2) / 2 = 0.5% in sqrt(v): its step within 0.5% |delta| / (|delta| + tau) of the limit.
  for (const auto& [kind, tol] : {std::pair<const char*, double>{"adam", 1e-3}, {"yogi", 4e-3}}) {
    CAPTURE(kind);
    CHECK(Steps(*Opt(kind), 0.5, 3000) == doctest::Approx(0.5 / (0.5 + 0.1)).epsilon(tol));
    CHECK(Steps(*Opt(kind), -0.2, 3000) == doctest::Approx(-0.2 / (0.2 + 0.1)).epsilon(tol));
  }
  // Adagrad: v grows as t delta^2, so the t-th step is about delta / (sqrt(t) |delta|).
  CHECK(Steps(*Opt("adagrad"), 0.5, 400) == doctest::Approx(0.5 / (std::sqrt(0.01 + 400 * 0.25) + 0.1)).epsilon(1e-2));
}

TEST_CASE("server momentum (FedAvgM): v = beta v + delta, x += lr v; plain FedAvg adds delta") {
  auto m = Opt("momentum", 0.5);
  std::vector<float> x = {1.0f};
  REQUIRE(m->Step({0.5f}, &x).ok());  // v = 0.5
  REQUIRE(m->Step({0.5f}, &x).ok());  // v = 0.95
  CHECK(x[0] == doctest::Approx(1.0 + 0.5 * (0.5 + 0.95)));
  auto none = Opt("none");
  std::vector<float> y = {1.0f, 2.0f};
  REQUIRE(none->Step({0.25f, -1.0f}, &y).ok());
  CHECK(y == std::vector<float>{1.25f, 1.0f});
  CHECK_FALSE(none->Step({1.0f}, &y).ok());  // sizes differ
}

TEST_CASE("server optimiser state survives a checkpoint: a restored optimiser steps as the original") {
  auto a = Opt("yogi"), b = Opt("yogi");
  std::vector<float> xa = {0.0f, 1.0f}, xb;
  REQUIRE(a->Step({0.3f, -0.1f}, &xa).ok());
  REQUIRE(a->Step({0.2f, 0.4f}, &xa).ok());
  REQUIRE(b->Load(a->Save()).ok());
  xb = xa;
  REQUIRE(a->Step({-0.5f, 0.1f}, &xa).ok());
  REQUIRE(b->Step({-0.5f, 0.1f}, &xb).ok());
  CHECK(xa == xb);
  CHECK_FALSE(Opt("adam")->Load(a->Save()).ok());  // yogi's moments are not adam's
  CHECK_FALSE(Opt("yogi")->Load(a->Save().substr(0, 20)).ok());
}

TEST_CASE("server optimiser options out of range are errors naming the field") {
  ServerOptimizerOptions o;
  o.kind = "adam";
  o.tau = 0.0;
  CHECK(ServerOptimizer::Create(o).status().message().find("federation.tau") != std::string::npos);
  o.tau = 1e-3;
  o.lr = -1;
  CHECK(ServerOptimizer::Create(o).status().message().find("federation.server_lr") != std::string::npos);
  o.lr = 1;
  o.kind = "lion";
  CHECK(ServerOptimizer::Create(o).status().message().find("'lion' is unknown") != std::string::npos);
}

TEST_CASE("median and trimmed mean, coordinate by coordinate") {
  RobustOptions o;
  o.rule = "median";
  auto med = RobustAggregate(OneD({1, 2, 3, 100, -50}), std::vector<double>(5, 1.0), o);
  REQUIRE(med.ok());
  CHECK(med.value()[0] == doctest::Approx(2.0));
  CHECK(RobustAggregate(OneD({1, 2, 3, 4}), std::vector<double>(4, 1.0), o).value()[0] == doctest::Approx(2.5));
  o.rule = "trimmed_mean";
  o.trim_fraction = 0.2;  // n = 5: one value cut from each end
  CHECK(RobustAggregate(OneD({1, 2, 3, 100, -50}), std::vector<double>(5, 1.0), o).value()[0] == doctest::Approx(2.0));
  // Two coordinates are independent, and an erased value (NaN) counts as 0.
  o.rule = "median";
  auto two = RobustAggregate({{1, NAN}, {2, 5}, {3, 6}}, {1, 1, 1}, o);
  REQUIRE(two.ok());
  CHECK(two.value() == std::vector<float>{2, 5});
}

TEST_CASE("Krum picks the update closest to its n - f - 2 neighbours; Multi-Krum averages the n - f best") {
  // n = 7, f = 2: each score sums the 3 smallest squared distances. Scores: 0 -> 12.25, 1 -> 5.25,
  // 1.5 -> 4.75, 3 -> 7.25, 4 -> 16.25, 100 and 101 -> over 9000.
  const auto u = OneD({0, 1, 1.5, 3, 4, 100, 101});
  const std::vector<double> w(7, 1.0);
  RobustOptions o;
  o.rule = "krum";
  o.byzantine = 2;
  std::vector<size_t> chosen;
  auto k = RobustAggregate(u, w, o, &chosen);
  REQUIRE(k.ok());
  CHECK(k.value()[0] == doctest::Approx(1.5));
  CHECK(chosen == std::vector<size_t>{2});
  o.rule = "multi_krum";
  auto mk = RobustAggregate(u, w, o, &chosen);
  REQUIRE(mk.ok());
  CHECK(mk.value()[0] == doctest::Approx((1.5 + 1 + 3 + 0 + 4) / 5.0));
  CHECK(chosen == std::vector<size_t>{2, 1, 3, 0, 4});
  o.multi_krum_keep = 2;
  CHECK(RobustAggregate(u, w, o).value()[0] == doctest::Approx((1.5 + 1) / 2.0));
  // Too few updates for f: an error that says how many are needed.
  o.rule = "krum";
  auto few = RobustAggregate(OneD({1, 2, 3, 4, 5, 6}), std::vector<double>(6, 1.0), o);
  REQUIRE_FALSE(few.ok());
  CHECK(few.status().message().find("needs at least 7 updates, the round has 6") != std::string::npos);
}

TEST_CASE("Bulyan stays within the honest values and ignores how far the attackers go") {
  RobustOptions o;
  o.rule = "bulyan";
  o.byzantine = 1;  // n >= 4f + 3 = 7
  const std::vector<double> w(7, 1.0);
  auto near = RobustAggregate({{0, 1}, {1, 2}, {1.5, 1.5}, {3, 0}, {4, 1}, {2, 2}, {100, -100}}, w, o);
  auto far = RobustAggregate({{0, 1}, {1, 2}, {1.5, 1.5}, {3, 0}, {4, 1}, {2, 2}, {1e6, -1e6}}, w, o);
  REQUIRE(near.ok());
  REQUIRE(far.ok());
  CHECK(near.value() == far.value());
  CHECK(near.value()[0] >= 0.0f);
  CHECK(near.value()[0] <= 4.0f);
  CHECK(near.value()[1] >= 0.0f);
  CHECK(near.value()[1] <= 2.0f);
  o.rule = "mean";  // the mean is dragged along
  CHECK(RobustAggregate({{0, 1}, {1, 2}, {1.5, 1.5}, {3, 0}, {4, 1}, {2, 2}, {1e6, -1e6}}, w, o).value()[0] > 1e5);
}

TEST_CASE("norm bounding scales updates down to clip_norm, then takes the weighted mean") {
  RobustOptions o;
  o.rule = "norm_bound";
  o.clip_norm = 1.0;
  auto r = RobustAggregate({{3, 4}, {0, 0.5}}, {1, 3}, o);  // (3, 4) has norm 5 -> (0.6, 0.8)
  REQUIRE(r.ok());
  CHECK(r.value()[0] == doctest::Approx((0.6 * 1 + 0 * 3) / 4));
  CHECK(r.value()[1] == doctest::Approx((0.8 * 1 + 0.5 * 3) / 4));
  o.clip_norm = 0;
  CHECK(ValidateRobust(o).message().find("federation.clip_norm") != std::string::npos);
}

TEST_CASE("a strategy combines the rule and the server optimiser; its state goes into the checkpoint") {
  StrategyOptions so;
  so.name = "fedadam";
  so.server.tau = 0.1;
  so.robust.rule = "median";
  auto s = MakeStrategy(so);
  REQUIRE(s.ok());
  ParamSet g = ParamSet::Zeros({{"w", {1}}});
  (*s)->BeginRound(1, g);
  for (float v : {0.5f, 0.4f, 0.6f, -90.0f, 0.5f}) {
    FitResult r{"n", 0, g, 10, 0, 0, 0};
    r.update.flat = {v};
    REQUIRE((*s)->Accumulate(r).ok());
  }
  auto next = (*s)->AggregateFit(1, g, {});
  REQUIRE(next.ok());  // the median 0.5, through Adam's first step
  CHECK(next->flat[0] == doctest::Approx(0.05 / (std::sqrt(0.99 * 0.01 + 0.01 * 0.25) + 0.1)).epsilon(1e-5));
  CHECK_FALSE((*s)->SaveState().empty());
  so.name = "fedprox2";
  CHECK(MakeStrategy(so).status().message().find("fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold") != std::string::npos);
}

TEST_CASE("the RDP accountant: the sampled Gaussian's closed forms at q = 1 and at order 2") {
  for (double z : {0.7, 1.0, 3.0})
    for (int a : {2, 5, 32}) {
      CHECK(SampledGaussianRdp(1.0, z, a) == doctest::Approx(a / (2 * z * z)));
      // q just below 1 takes the binomial sum: it must meet the Gaussian's a / (2 z^2).
      CHECK(SampledGaussianRdp(1.0 - 1e-9, z, a) == doctest::Approx(a / (2 * z * z)).epsilon(1e-6));
    }
  // Order 2: A_2 = (1 - q)^2 + 2 q (1 - q) + q^2 e^(1/z^2) = 1 + q^2 (e^(1/z^2) - 1).
  for (double q : {0.01, 0.1, 0.5})
    CHECK(SampledGaussianRdp(q, 1.2, 2) == doctest::Approx(std::log(1 + q * q * (std::exp(1 / 1.44) - 1))));
}

TEST_CASE("the RDP accountant against published figures: TensorFlow Privacy's MNIST DP-SGD table") {
  // tensorflow/privacy tutorials/README.md: q = 256 / 60000, delta = 1e-5, steps = epochs x 60000 // 256;
  // (z = 1.12, 1 epoch) 1.00, (1.12, 2) 1.04, (1.12, 60) 2.92, (0.6, 30) 9.74, (1.2, 10) 1.20. That
  // accountant also minimises over fractional orders (1.1, 1.2, ..., 10.9), where ours has integers
  // 2..256 only, so ours may be a little higher (a coarser minimum), never lower: 0.5% here at most.
  const double q = 256.0 / 60000.0;
  struct Row {
    double z;
    uint64_t epochs;
    double eps;
  };
  for (const Row& r : {Row{1.12, 1, 1.00}, Row{1.12, 2, 1.04}, Row{1.12, 60, 2.92}, Row{0.6, 30, 9.74}, Row{1.2, 10, 1.20}}) {
    CAPTURE(r.z);
    CAPTURE(r.epochs);
    const double eps = DpEpsilon(q, r.z, r.epochs * 60000 / 256, 1e-5);
    CHECK(eps >= r.eps - 0.005);  // the published figures have two decimals
    CHECK(eps <= r.eps * 1.005);
  }
}

TEST_CASE("epsilon falls with more noise, grows with rounds, and sampling amplifies privacy") {
  CHECK(DpEpsilon(0.1, 2.0, 100, 1e-5) < DpEpsilon(0.1, 1.0, 100, 1e-5));
  CHECK(DpEpsilon(0.1, 1.0, 200, 1e-5) > DpEpsilon(0.1, 1.0, 100, 1e-5));
  CHECK(DpEpsilon(0.1, 1.0, 100, 1e-5) < DpEpsilon(1.0, 1.0, 100, 1e-5));
  CHECK(std::isinf(DpEpsilon(0.1, 0.0, 10, 1e-5)));
  // q = 1: the minimum over integer orders of T a / (2 z^2) + log(1 / delta) / (a - 1).
  double best = 1e300;
  for (int a = 2; a <= 256; ++a) best = std::min(best, 50 * a / (2 * 4.0) + std::log(1e5) / (a - 1));
  CHECK(DpEpsilon(1.0, 2.0, 50, 1e-5) == doctest::Approx(best));
  auto z = NoiseForEpsilon(0.2, 20, 1e-5, 2.0);
  REQUIRE(z.ok());
  CHECK(DpEpsilon(0.2, z.value(), 20, 1e-5) <= 2.0);
  CHECK(DpEpsilon(0.2, z.value() * 0.99, 20, 1e-5) > 2.0);
  CHECK_FALSE(NoiseForEpsilon(1.0, 1000000, 1e-5, 1e-4).ok());
}

TEST_CASE("DP-FedAvg: clipped updates, every node once, Gaussian noise of std z C on the sum, epsilon per round") {
  StrategyOptions so;
  so.dp.clip_norm = 1.0;
  so.dp.noise_multiplier = 0.0;
  so.dp.expected_nodes = 4;
  so.dp.sampling_rate = 0.5;
  auto s = MakeStrategy(so).value();
  ParamSet g = ParamSet::Zeros({{"w", {2}}});
  s->BeginRound(1, g);
  FitResult a{"a", 0, g, 10, 0, 0, 0}, b{"b", 1, g, 1000, 0, 0, 0};
  a.update.flat = {3.0f, 4.0f};  // norm 5: clipped to (0.6, 0.8)
  b.update.flat = {0.1f, 0.0f};  // kept; its 1000 samples do not weigh more
  REQUIRE(s->Accumulate(a).ok());
  REQUIRE(s->Accumulate(b).ok());
  auto next = s->AggregateFit(1, g, {});
  REQUIRE(next.ok());
  CHECK(next->flat[0] == doctest::Approx((0.6 + 0.1) / 4));  // over the expected 4 nodes
  CHECK(next->flat[1] == doctest::Approx(0.8 / 4));

  // The noise: 20,000 coordinates of zero updates; std z C / n = 1.5 x 2 / 4 = 0.75. The sample std
  // of 20,000 draws is within 4 x its standard error (1 / sqrt(2 x 20,000) = 0.5%) of it.
  so.dp.clip_norm = 2.0;
  so.dp.noise_multiplier = 1.5;
  so.dp.seed = 11;
  auto noisy = MakeStrategy(so).value();
  ParamSet big = ParamSet::Zeros({{"w", {20000}}});
  for (uint32_t round = 1; round <= 3; ++round) {
    noisy->BeginRound(round, big);
    FitResult z{"z", 0, big, 5, 0, 0, 0};
    REQUIRE(noisy->Accumulate(z).ok());
    auto out = noisy->AggregateFit(round, big, {});
    REQUIRE(out.ok());
    double s2 = 0.0, m = 0.0;
    for (float v : out->flat) m += v;
    m /= out->flat.size();
    for (float v : out->flat) s2 += (v - m) * (v - m);
    CHECK(std::sqrt(s2 / (out->flat.size() - 1)) == doctest::Approx(0.75).epsilon(0.02));
    const auto figures = noisy->RoundFigures();
    REQUIRE(figures.size() == 4);
    CHECK(figures[0].first == "dp_epsilon");
    CHECK(figures[3].second == 2.0);  // fixed clipping: C stays
    CHECK(figures[0].second == doctest::Approx(DpEpsilon(0.5, 1.5, round, 1e-5)));
  }
  // The accountant's round count is part of the checkpoint.
  auto restored = MakeStrategy(so).value();
  REQUIRE(restored->LoadState(noisy->SaveState()).ok());
  CHECK(restored->RoundFigures()[0].second == doctest::Approx(DpEpsilon(0.5, 1.5, 3, 1e-5)));
  CHECK_FALSE(restored->LoadState("").ok());
  so.robust.rule = "krum";
  CHECK(MakeStrategy(so).status().message().find("takes aggregation = mean") != std::string::npos);
}

TEST_CASE("adaptive clipping: C moves by exp(-clip_lr (unclipped share - quantile)) and settles at the norms' quantile") {
  DpOptions o;
  o.clip_norm = 1.0;
  o.noise_multiplier = 0.0;  // no noise: the count is exact, so the steps are the closed form
  o.expected_nodes = 4;
  o.adaptive = true;
  o.target_quantile = 0.5;
  o.clip_lr = 0.2;
  auto a = DpAggregator::Create(o);
  REQUIRE(a.ok());
  const std::vector<float> two = {2.0f, 0.0f};  // every update has norm 2
  a->BeginRound(2);
  for (int i = 0; i < 4; ++i) a->Add(two);
  REQUIRE(a->Finish(1).ok());
  CHECK(a->clip_norm() == doctest::Approx(std::exp(0.2 * 0.5)));  // none unclipped: share 0
  for (uint32_t r = 2; r < 60; ++r) {
    a->BeginRound(2);
    for (int i = 0; i < 4; ++i) a->Add(two);
    REQUIRE(a->Finish(r).ok());
  }
  // Above 2 the share is 1 and C shrinks by exp(-0.1); below, it grows by exp(0.1): it stays within
  // a factor exp(0.1) of the norms.
  CHECK(a->clip_norm() > 2.0 * std::exp(-0.1) - 1e-9);
  CHECK(a->clip_norm() < 2.0 * std::exp(0.1) + 1e-9);
  // With noise, the updates' multiplier leaves room for the count's: (z^-2 - (2 sigma_b)^-2)^(-1/2).
  o.noise_multiplier = 1.0;
  o.expected_nodes = 20;  // sigma_b = 20 / 20 = 1
  auto b = DpAggregator::Create(o);
  REQUIRE(b.ok());
  CHECK(b->update_noise_multiplier() == doctest::Approx(1.0 / std::sqrt(1.0 - 0.25)));
  o.count_noise_std = 1.0;
  o.noise_multiplier = 1.9;  // below 2 sigma_b = 2: the updates' share is left
  CHECK(DpAggregator::Create(o).ok());
  o.noise_multiplier = 2.5;  // not below: refused, naming the field
  CHECK(DpAggregator::Create(o).status().message().find("federation.dp_noise_multiplier = 2.5") != std::string::npos);
  // The clipping norm is part of the checkpoint.
  auto c = DpAggregator::Create(DpOptions{0.0, 1.0, 1e-5, 1.0, 4, 0, true}).value();
  REQUIRE(c.Load(a->Save()).ok());
  CHECK(c.clip_norm() == a->clip_norm());
}

TEST_CASE("SCAFFOLD on the server: x moves by the plain mean update, c by (1 / N) x the control deltas' sum") {
  StrategyOptions so;
  so.name = "scaffold";
  so.num_nodes = 4;
  auto s = MakeStrategy(so).value();
  ParamSet g = ParamSet::Zeros({{"w", {2}}});
  g.flat = {1.0f, 1.0f};
  s->BeginRound(1, g);
  REQUIRE(s->FitControl() != nullptr);
  CHECK(*s->FitControl() == std::vector<float>{0.0f, 0.0f});  // c starts at 0
  FitResult a{"a", 0, g, 10, 0, 0, 0}, b{"b", 1, g, 990, 0, 0, 0};
  a.update.flat = {1.0f, 0.0f};
  a.control_delta = {0.4f, -0.8f};
  b.update.flat = {0.0f, 2.0f};
  b.control_delta = {0.4f, 0.0f};
  REQUIRE(s->Accumulate(a).ok());
  REQUIRE(s->Accumulate(b).ok());
  FitResult no_control{"c", 2, g, 10, 0, 0, 0};
  no_control.update.flat = {0.0f, 0.0f};
  CHECK_FALSE(s->Accumulate(no_control).ok());
  auto next = s->AggregateFit(1, g, {});
  REQUIRE(next.ok());
  CHECK(next->flat == std::vector<float>{1.5f, 2.0f});            // unweighted mean: (1, 0) and (0, 2)
  CHECK(*s->FitControl() == std::vector<float>{0.2f, -0.2f});      // (0.8, -0.8) / 4
  auto restored = MakeStrategy(so).value();
  REQUIRE(restored->LoadState(s->SaveState()).ok());
  restored->BeginRound(2, g);
  CHECK(*restored->FitControl() == std::vector<float>{0.2f, -0.2f});
  so.robust.rule = "median";
  CHECK(MakeStrategy(so).status().message().find("scaffold takes aggregation = mean") != std::string::npos);
}

TEST_CASE("the evaluate side: every evaluate_every-th round's participants, their figures weighted by samples") {
  StrategyOptions so;
  so.evaluate_every = 2;
  auto s = MakeStrategy(so).value();
  const std::vector<std::string> participants = {"node-1", "node-3"};
  CHECK(s->ConfigureEvaluate(1, participants).empty());
  CHECK(s->ConfigureEvaluate(2, participants) == participants);
  // (100 x 0.5 + 300 x 0.9) / 400 = 0.8; losses (100 x 2 + 300 x 1) / 400 = 1.25.
  const EvaluateSummary e = s->AggregateEvaluate(2, 3, {{"node-1", 100, 2.0, 0.5}, {"node-3", 300, 1.0, 0.9}});
  CHECK(e.asked == 3);
  CHECK(e.answered == 2);
  CHECK(e.samples == 400);
  REQUIRE(e.has_figures);
  CHECK(e.accuracy == doctest::Approx(0.8));
  CHECK(e.loss == doctest::Approx(1.25));
  CHECK_FALSE(s->AggregateEvaluate(2, 1, {}).has_figures);  // nobody answered: no figures, not zeros
  so.evaluate_every = 0;
  CHECK(MakeStrategy(so).value()->ConfigureEvaluate(4, participants).empty());
}
