#include <doctest/doctest.h>

#include <cmath>

#include "codecs/rng.h"
#include "server/aggregate.h"
#include "server/registry.h"
#include "server/round_tracker.h"
#include "server/strategy.h"

using namespace edgebed;

TEST_CASE("the weighted mean matches the hand computation") {
  WeightedMean m;
  m.Reset(3);
  const float a[] = {1, 2, 3}, b[] = {4, 5, 6};
  m.Add(a, 3, 1.0);
  m.Add(b, 3, 3.0);
  float out[3];
  m.Mean(out);
  CHECK(out[0] == doctest::Approx((1 + 12) / 4.0));
  CHECK(out[1] == doctest::Approx((2 + 15) / 4.0));
  CHECK(out[2] == doctest::Approx((3 + 18) / 4.0));
  CHECK(m.count() == 2);
}

TEST_CASE("FedAvg moves the global model by the sample-weighted mean update") {
  auto s = MakeStrategy({"fedavg", 1.0, {}}).value();
  ParamSet g = ParamSet::Zeros({{"w", {2}}});
  g.flat = {10.0f, 20.0f};
  s->BeginRound(1, g);
  FitResult r1{"node-0", 0, g, 100, 0, 0, 0};
  r1.update.flat = {1.0f, -1.0f};
  FitResult r2{"node-1", 1, g, 300, 0, 0, 0};
  r2.update.flat = {-1.0f, 3.0f};
  REQUIRE(s->Accumulate(r1).ok());
  REQUIRE(s->Accumulate(r2).ok());
  FitResult wrong{"node-2", 2, ParamSet::Zeros({{"w", {3}}}), 10, 0, 0, 0};
  CHECK(s->Accumulate(wrong).message().find("has 3 values, the model has 2") != std::string::npos);
  auto next = s->AggregateFit(1, g, {});
  REQUIRE(next.ok());
  CHECK(next->flat[0] == doctest::Approx(10.0 + (100 * 1.0 + 300 * -1.0) / 400));
  CHECK(next->flat[1] == doctest::Approx(20.0 + (100 * -1.0 + 300 * 3.0) / 400));
}

TEST_CASE("FedAvg with nothing accumulated refuses to aggregate") {
  auto s = MakeStrategy({"fedavg", 1.0, {}}).value();
  ParamSet g = ParamSet::Zeros({{"w", {2}}});
  s->BeginRound(4, g);
  CHECK_FALSE(s->AggregateFit(4, g, {{"node-0", "died"}}).ok());
}

TEST_CASE("selection takes the configured fraction, seeded") {
  auto s = MakeStrategy({"fedavg", 0.3, {}}).value();
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("node-" + std::to_string(i));
  std::vector<Candidate> ids;
  for (const auto& n : names) ids.push_back({n, 1.0, 1.0});
  Rng r1 = MakeRng(1, "select"), r2 = MakeRng(1, "select");
  auto a = s->ConfigureFit(1, ids, r1).ids, b = s->ConfigureFit(1, ids, r2).ids;
  CHECK(a.size() == 3);
  CHECK(a == b);
  CHECK(MakeStrategy({"fedavg", 0.0, {}}).status().message().find("federation.fraction") != std::string::npos);
  CHECK(MakeStrategy({"krum", 1.0, {}}).status().message().find("federation.strategy") != std::string::npos);
}

TEST_CASE("the registry admits, refuses out-of-range and duplicate indices, binds ids to connections, tracks liveness") {
  NodeRegistry reg(3);
  const auto now = std::chrono::steady_clock::now();
  REQUIRE(reg.Join("node-0", "conn-a", 0, now).ok());
  REQUIRE(reg.Join("node-1", "conn-b", 1, now).ok());
  CHECK(reg.Join("node-9", "conn-c", 9, now).message().find("join.node_index = 9 is out of range [0, 2]") != std::string::npos);
  CHECK(reg.Join("imposter", "conn-c", 1, now).message().find("already held by node-1") != std::string::npos);
  CHECK(reg.Join("", "conn-c", 2, now).message().find("join.node_id") != std::string::npos);
  CHECK(reg.Join("bad\nid", "conn-c", 2, now).message().find("printable ASCII") != std::string::npos);
  // Hijack: an alive node's id from another connection is refused; from its own it joins again.
  CHECK(reg.Join("node-0", "conn-evil", 0, now).message().find("held by another connection") != std::string::npos);
  CHECK(reg.Route(*reg.Find("node-0")) == "conn-a");
  CHECK(reg.Join("node-0", "conn-a", 0, now).ok());
  reg.MarkGone("node-1");
  CHECK(reg.AliveIds() == std::vector<std::string>{"node-0"});
  CHECK(reg.Join("node-1b", "conn-d", 1, now).ok());  // its index is free again
  // A failed node rejoins from a new connection; a closed connection frees what it carried.
  CHECK(reg.Join("node-1", "conn-e", 2, now).ok());
  CHECK(reg.ReleaseRoute("conn-e") == std::vector<std::string>{"node-1"});
  CHECK(reg.ReleaseRoute("conn-e").empty());
  CHECK(reg.Join("squatter", "conn-f", 2, now).ok());
  // By index: the alive holder, else the last one that held it; nobody for an index never joined.
  CHECK(reg.ByIndex(2)->id == "squatter");
  reg.MarkGone("squatter");
  REQUIRE(reg.ByIndex(2) != nullptr);
  CHECK_FALSE(reg.ByIndex(2)->alive);
  NodeRegistry fresh(3);
  CHECK(fresh.ByIndex(1) == nullptr);
  REQUIRE(fresh.Join("node-1", "conn-a", 1, now).ok());
  CHECK(fresh.GoneReason(*fresh.Find("node-1")).empty());
  fresh.MarkGone("node-1", "left the federation: test");
  CHECK(fresh.GoneReason(*fresh.Find("node-1")) == "left the federation: test");
  REQUIRE(fresh.Join("node-1", "conn-a", 1, now).ok());
  CHECK(fresh.GoneReason(*fresh.Find("node-1")).empty());  // alive again: no reason to be gone
}

TEST_CASE("liveness: a node is silent when neither it nor the process carrying it has been heard for the timeout") {
  NodeRegistry reg(3);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(reg.Join("node-0", "host", 0, t0).ok());  // two nodes on one node host
  REQUIRE(reg.Join("node-1", "host", 1, t0).ok());
  REQUIRE(reg.Join("node-2", "own", 2, t0).ok());
  RoundTracker rounds({/*liveness_timeout_s=*/10.0, /*round_deadline_s=*/600.0});
  rounds.Begin(1);
  for (const char* id : {"node-0", "node-1", "node-2"}) rounds.Expect(id);
  const auto t8 = t0 + std::chrono::seconds(8), t12 = t0 + std::chrono::seconds(12);
  reg.Touch("node-0", t8);  // the host speaks for node-0 (a heartbeat while it trains it)
  reg.TouchRoute("host", t8);
  // node-1's fit_ins waits in the busy host's queue: the host is alive, so node-1 is not silent.
  CHECK(rounds.Silent(reg, t12) == std::vector<std::string>{"node-2"});
  CHECK(rounds.Silent(reg, t0 + std::chrono::seconds(17)) == std::vector<std::string>{"node-2"});
  CHECK(rounds.Silent(reg, t0 + std::chrono::seconds(21)) == std::vector<std::string>{"node-0", "node-1", "node-2"});
  (void)reg.ReleaseRoute("host");  // the host's connection closed: its time is forgotten with it
  CHECK(reg.LastHeard(*reg.Find("node-1")) == t0);
}

TEST_CASE("erased values (NaN) are left out of their coordinate's mean only") {
  WeightedMean m;
  m.Reset(3);
  const float nan = std::nanf("");
  const float a[] = {1, nan, 3}, b[] = {5, 7, nan}, c[] = {nan, nan, nan};
  m.Add(a, 3, 1.0);
  m.Add(b, 3, 3.0);
  m.Add(c, 3, 2.0);
  float out[3];
  m.Mean(out);
  CHECK(out[0] == doctest::Approx((1 * 1 + 5 * 3) / 4.0));
  CHECK(out[1] == doctest::Approx(7.0));
  CHECK(out[2] == doctest::Approx(3.0));
  CHECK(m.erased() == 5);
  WeightedMean all_lost;
  all_lost.Reset(2);
  const float d[] = {nan, 1.0f};
  all_lost.Add(d, 2, 1.0);
  float o2[2];
  all_lost.Mean(o2);
  CHECK(o2[0] == 0.0f);  // nobody delivered it: the global value stays
  CHECK(o2[1] == 1.0f);
}

TEST_CASE("deadline-aware selection leaves out the nodes predicted to miss the deadline") {
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("node-" + std::to_string(i));
  std::vector<Candidate> c;
  for (int i = 0; i < 20; ++i) c.push_back({names[i], i < 5 ? 50.0 : 5.0, 1.0});
  SelectionOptions o;
  o.policy = "deadline";
  o.fraction = 0.5;
  o.virtual_deadline_s = 10.0;
  Rng rng = MakeRng(2, "select");
  const Selection s = SelectNodes(o, c, rng);
  CHECK(s.excluded == 5);
  CHECK(s.ids.size() == 10);
  for (const auto& id : s.ids) CHECK(std::stoi(id.substr(5)) >= 5);
}

TEST_CASE("channel-aware selection takes the best gains; over-commitment selects more, aggregates K") {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("node-" + std::to_string(i));
  std::vector<Candidate> c;
  for (int i = 0; i < 10; ++i) c.push_back({names[i], 1.0, static_cast<double>(i)});
  SelectionOptions o;
  o.policy = "channel";
  o.fraction = 0.3;
  Rng rng = MakeRng(3, "select");
  Selection s = SelectNodes(o, c, rng);
  CHECK(s.ids == std::vector<std::string>{"node-7", "node-8", "node-9"});
  CHECK(s.target == 0);
  o.over_commit = 0.5;
  s = SelectNodes(o, c, rng);
  CHECK(s.ids.size() == 5);  // ceil(3 * 1.5)
  CHECK(s.target == 3);
  CHECK(MakeStrategy({"fedavg", 1.0, {"fastest", 1.0, 0.0, 0.0}}).status().message().find("federation.selection") !=
        std::string::npos);
}

TEST_CASE("the registry's running counts and index table agree with a scan of its records after any joins, leaves and closes") {
  // Random joins (over 3 connections, sometimes onto a held index), readiness, departures and closed
  // connections; after each, the counts the registry keeps equal the ones recounted from its records.
  NodeRegistry reg(20);
  Rng rng = MakeRng(5, "registry-test");
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("n" + std::to_string(i));
  for (int step = 0; step < 3000; ++step) {
    const std::string& id = ids[rng() % ids.size()];
    const std::string route = "r" + std::to_string(rng() % 3);
    switch (rng() % 4) {
      case 0: (void)reg.Join(id, route, static_cast<uint32_t>(rng() % 20), now); break;
      case 1: reg.MarkReady(id); break;
      case 2: reg.MarkGone(id); break;
      case 3: if (rng() % 10 == 0) reg.ReleaseRoute(route); break;
    }
    size_t alive = 0, ready = 0;
    std::vector<int> holders(20, 0);
    for (const auto& i : ids) {
      const NodeRecord* r = reg.Find(i);
      if (!r || !r->alive) continue;
      ++alive;
      ready += r->ready;
      ++holders[r->index];
      REQUIRE(reg.ByIndex(r->index) == r);
    }
    REQUIRE(reg.alive_count() == alive);
    REQUIRE(reg.ready_count() == ready);
    REQUIRE(reg.AliveIds().size() == alive);
    for (int h : holders) REQUIRE(h <= 1);  // one alive node per index
  }
}
