// FedBuff's schedule: jobs complete in virtual finish order whatever order their answers arrive in,
// never ahead of a job still training that could finish first; the staleness weight's closed forms;
// the FedBuff strategy's step, x + lr (1/K) sum of the (already weighted) updates, worked by hand.
#include <doctest/doctest.h>

#include <cmath>

#include "server/async_schedule.h"
#include "server/strategy.h"

using namespace edgebed;

namespace {

AsyncJob Job(const std::string& id, double start_s, double min_s, uint64_t seq, uint64_t version = 0) {
  AsyncJob j;
  j.node_id = id;
  j.start_s = start_s;
  j.min_duration_s = min_s;
  j.seq = seq;
  j.version = version;
  return j;
}

FitResult Took(double s) {
  FitResult r;
  r.virtual_s = s;
  return r;
}

}  // namespace

TEST_CASE("staleness weights: 1/sqrt(1+s) and constant") {
  CHECK(StalenessWeight("sqrt", 0) == 1.0);
  CHECK(StalenessWeight("sqrt", 3) == doctest::Approx(0.5));
  CHECK(StalenessWeight("sqrt", 8) == doctest::Approx(1.0 / 3.0));
  CHECK(StalenessWeight("constant", 8) == 1.0);
}

TEST_CASE("virtual order: a finished job waits for every job still training that could finish before it") {
  AsyncSchedule s(/*virtual_order=*/true);
  REQUIRE(s.Dispatch(Job("a", 0.0, 1.0, 1)).ok());
  REQUIRE(s.Dispatch(Job("b", 0.0, 1.0, 2)).ok());
  REQUIRE(s.Dispatch(Job("c", 0.0, 5.0, 3)).ok());
  CHECK_FALSE(s.Dispatch(Job("a", 0.0, 1.0, 4)).ok());  // one job per node
  REQUIRE(s.Complete("b", Took(3.0), {}, 100, 0, 0).ok());   // b answers first, done at 3
  CHECK_FALSE(s.PopReady().has_value());                      // a (training) could finish at 1
  REQUIRE(s.Complete("a", Took(2.0), {}, 100, 0, 0).ok());   // a answers later, done at 2
  auto first = s.PopReady();
  REQUIRE(first.has_value());
  CHECK(first->node_id == "a");
  CHECK(first->finish_s == 2.0);
  auto second = s.PopReady();
  REQUIRE(second.has_value());
  CHECK(second->node_id == "b");
  CHECK_FALSE(s.PopReady().has_value());  // c is still training
  CHECK(s.Training() == std::vector<std::string>{"c"});
  // A job sent later (at 2) with a bound past c's finish does not hold c back.
  REQUIRE(s.Dispatch(Job("a", 2.0, 10.0, 5)).ok());
  REQUIRE(s.Complete("c", Took(6.0), {}, 100, 0, 0).ok());
  auto third = s.PopReady();
  REQUIRE(third.has_value());
  CHECK(third->node_id == "c");
  CHECK(third->finish_s == 6.0);
  CHECK(s.in_flight() == 1);
}

TEST_CASE("a failed job ends at its start plus its bound; an answer under its bound counts as the bound") {
  AsyncSchedule s(true);
  REQUIRE(s.Dispatch(Job("x", 1.0, 2.0, 1)).ok());
  REQUIRE(s.Dispatch(Job("y", 1.0, 2.0, 2)).ok());
  REQUIRE(s.Fail("x", "offline").ok());
  REQUIRE(s.Complete("y", Took(0.5), {}, 0, 0, 0).ok());
  auto a = s.PopReady(), b = s.PopReady();
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(a->node_id == "x");  // both at 3.0: the earlier dispatch first
  CHECK_FALSE(a->ok);
  CHECK(a->failure == "offline");
  CHECK(a->finish_s == 3.0);
  CHECK(b->finish_s == 3.0);
  CHECK_FALSE(s.Complete("y", Took(1.0), {}, 0, 0, 0).ok());  // no job any more
  REQUIRE(s.Dispatch(Job("z", 0.0, 0.0, 3)).ok());
  CHECK_FALSE(s.Complete("z", Took(std::nan("")), {}, 0, 0, 0).ok());
  CHECK_FALSE(s.Complete("z", Took(-1.0), {}, 0, 0, 0).ok());
}

TEST_CASE("arrival order (real node processes): jobs complete as their answers arrive") {
  AsyncSchedule s(/*virtual_order=*/false);
  REQUIRE(s.Dispatch(Job("a", 0.0, 0.0, 1)).ok());
  REQUIRE(s.Dispatch(Job("b", 0.0, 0.0, 2)).ok());
  REQUIRE(s.Complete("b", Took(9.0), {}, 0, 0, 0).ok());
  auto first = s.PopReady();  // a is still training, but arrival order does not wait
  REQUIRE(first.has_value());
  CHECK(first->node_id == "b");
  REQUIRE(s.Complete("a", Took(1.0), {}, 0, 0, 0).ok());
  CHECK(s.PopReady()->node_id == "a");
}

TEST_CASE("the FedBuff strategy: x + server_lr x the unweighted mean of the buffer's (staleness-weighted) updates") {
  StrategyOptions so;
  so.name = "fedbuff";
  so.server.lr = 0.5;
  auto s = MakeStrategy(so).value();
  ParamSet g = ParamSet::Zeros({{"w", {2}}});
  g.flat = {1.0f, 1.0f};
  s->BeginRound(1, g);
  FitResult a{"a", 0, g, 10, 0, 0, 0}, b{"b", 1, g, 990, 0, 0, 0};
  a.update.flat = {2.0f, 0.0f};                                    // fresh: weight 1
  const double w = StalenessWeight("sqrt", 3);                     // three steps old: 0.5
  b.update.flat = {0.0f, static_cast<float>(8.0 * w)};             // the server scales before it accumulates
  REQUIRE(s->Accumulate(a).ok());
  REQUIRE(s->Accumulate(b).ok());
  auto next = s->AggregateFit(1, g, {});
  REQUIRE(next.ok());
  // (1/2) ((2, 0) + 0.5 (0, 8)) = (1, 2), samples do not weigh; x + 0.5 (1, 2) = (1.5, 2).
  CHECK(next->flat == std::vector<float>{1.5f, 2.0f});
  so.dp.clip_norm = 1.0;
  CHECK(MakeStrategy(so).status().message().find("fedbuff takes no DP") != std::string::npos);
}
