#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "node/availability.h"
#include "splitnets/device_profile.h"

using namespace edgebed;

TEST_CASE("profile mixes: ready and custom profiles, shares normalised, errors name the field") {
  auto mix = ParseProfileMix("rpi4:3,phone:1", "population.profiles");
  REQUIRE(mix.ok());
  CHECK(mix->size() == 2);
  CHECK(mix.value()[0].second == doctest::Approx(0.75));
  CHECK(ParseProfileMix("toaster", "population.profiles").status().message().find(
            "population.profiles: profile 'toaster' is unknown; ready profiles: rpi4, pi-zero-2, phone, server") == 0);
  CHECK(ParseProfileMix("rpi4:-1", "population.profiles").status().message().find("must be a number > 0") !=
        std::string::npos);
  CHECK_FALSE(ParseProfileMix("", "population.profiles").ok());
  DeviceProfile slow;
  slow.name = "slow";
  slow.train_gflops = 0.5;
  auto custom = ParseProfileMix("slow", "population.profiles", {{"slow", slow}});
  REQUIRE(custom.ok());
  CHECK(custom.value()[0].first.train_gflops == 0.5);
}

TEST_CASE("profiles are assigned from the seed, in the mix's proportions") {
  auto mix = ParseProfileMix("rpi4:0.25,phone:0.75", "f").value();
  int phones = 0;
  for (uint32_t i = 0; i < 4000; ++i) phones += AssignProfile(mix, 7, i).name == "phone";
  CHECK(phones / 4000.0 == doctest::Approx(0.75).epsilon(0.05));
  CHECK(AssignProfile(mix, 7, 12).name == AssignProfile(mix, 7, 12).name);
}

TEST_CASE("a round's virtual cost follows the profile: download, training FLOPs, energy") {
  DeviceProfile p;
  p.train_gflops = 2.0;
  p.downlink_bps = 8e6;
  p.compute_power_w = 3.0;
  const VirtualCost c = PredictRound(p, 1'000'000, 6'000'000, 600, 2);
  CHECK(c.download_s == doctest::Approx(1.0));                       // 8e6 bits at 8 Mbit/s
  CHECK(c.compute_s == doctest::Approx(6e6 * 600 * 2 / 2e9));         // 3.6 s
  CHECK(c.compute_energy_j == doctest::Approx(3.0 * c.compute_s));
  CHECK(c.total_s() == doctest::Approx(4.6));
  p.ms_per_sample = 4.0;  // FedScale-style speed overrides the FLOP count
  CHECK(PredictRound(p, 0, 2'000'000, 600, 2).compute_s == doctest::Approx(4.0e-3 * 600 * 2));
}

TEST_CASE("availability: always, a seeded on/off Markov chain, and traces") {
  auto always = Availability::Create({}, 10, 1);
  REQUIRE(always.ok());
  CHECK(always->Online(3, 7));

  AvailabilitySpec m{"markov", 0.2, 0.3, ""};
  auto a = Availability::Create(m, 2000, 5), b = Availability::Create(m, 2000, 5);
  double online = 0;
  int changes = 0, differ = 0;
  for (uint32_t r = 1; r <= 30; ++r)
    for (uint32_t k = 0; k < 2000; ++k) {
      const bool x = a->Online(k, r);
      differ += x != b->Online(k, r);
      online += x;
    }
  CHECK(differ == 0);  // same seed, same chain
  CHECK(online / (30 * 2000) == doctest::Approx(0.3 / 0.5).epsilon(0.03));  // stationary p_on / (p_on + p_off)
  auto c = Availability::Create(m, 2000, 6);
  for (uint32_t k = 0; k < 2000; ++k) changes += c->Online(k, 1) != Availability::Create(m, 2000, 5)->Online(k, 1);
  CHECK(changes > 0);

  const std::string trace = std::filesystem::temp_directory_path() / "edgebed-trace-test.csv";
  std::ofstream(trace) << "node,round,online\n4,3,0\n4,5,1\n";
  auto t = Availability::Create({"trace", 0, 1, trace}, 10, 1);
  REQUIRE(t.ok());
  CHECK(t->Online(4, 2));
  CHECK_FALSE(t->Online(4, 3));
  CHECK_FALSE(t->Online(4, 4));
  CHECK(t->Online(4, 5));
  CHECK(t->Online(5, 3));
  std::ofstream(trace) << "4,3,maybe\n";
  CHECK(Availability::Create({"trace", 0, 1, trace}, 10, 1).status().message().find(trace + ":1: expected") !=
        std::string::npos);
  CHECK(Availability::Create({"trace", 0, 1, "/nonexistent.csv"}, 10, 1).status().message().find(
            "population.trace_file = '/nonexistent.csv' cannot be opened") != std::string::npos);
  std::filesystem::remove(trace);
}

TEST_CASE("a restarted node host's availability chain is where the uninterrupted one is: asked round 9 first, or 1..9 in turn") {
  // A resumed run restarts its node hosts, which then ask their chains for round r first.
  AvailabilitySpec m{"markov", 0.3, 0.4, ""};
  auto walked = Availability::Create(m, 500, 11), restarted = Availability::Create(m, 500, 11);
  REQUIRE(walked.ok());
  REQUIRE(restarted.ok());
  size_t online = 0;
  for (uint32_t k = 0; k < 500; ++k) {
    for (uint32_t r = 1; r < 9; ++r) (void)walked->Online(k, r);
    const bool w = walked->Online(k, 9);
    CHECK(restarted->Online(k, 9) == w);
    online += w;
  }
  // Not a constant: the stationary share online is p_on / (p_on + p_off) = 4/7 (std of the count ~11).
  CHECK(online > 230);
  CHECK(online < 340);
}
