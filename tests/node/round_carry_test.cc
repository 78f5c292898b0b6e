// What a node carries across rounds: a round played again starts from the carry before it, the
// carry survives a restart through its state file, another run's file is ignored, and a damaged
// file is an error naming it, after which the node goes on from nothing.
#include "node/round_carry.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace edgebed;
namespace fs = std::filesystem;

namespace {

std::string Dir() {
  const std::string d = fs::temp_directory_path().string() + "/edgebed-carry-" + std::to_string(getpid());
  fs::remove_all(d);
  return d;
}

// A round's training as far as the carry sees it: c_i grows by the round number.
void Train(RoundCarry& rc, const std::string& run, uint32_t round) {
  auto c = rc.Begin(run, round);
  REQUIRE(c.ok());
  if (c.value()->control.empty()) c.value()->control.assign(3, 0.0f);
  for (float& v : c.value()->control) v += static_cast<float>(round);
  c.value()->vq.set_residual({static_cast<float>(round)});
  REQUIRE(rc.Commit().ok());
}

std::vector<float> ControlAt(RoundCarry& rc, const std::string& run, uint32_t round) {
  auto c = rc.Begin(run, round);
  REQUIRE(c.ok());
  return c.value()->control;
}

}  // namespace

TEST_CASE("a round played again starts from the carry before it, in memory and after a restart") {
  const std::string dir = Dir(), file = dir + "/node-0.carry";
  {
    RoundCarry rc(file);
    Train(rc, "run-a", 1);  // c = 1
    Train(rc, "run-a", 3);  // c = 4 (the node was not selected in round 2)
    Train(rc, "run-a", 4);  // c = 8
    // The server resumed after round 3 and plays round 4 again: the carry before it.
    CHECK(ControlAt(rc, "run-a", 4) == std::vector<float>(3, 4.0f));
    Train(rc, "run-a", 4);  // c = 8 again, not 12
  }
  RoundCarry restarted(file);  // the node process started again
  CHECK(ControlAt(restarted, "run-a", 5) == std::vector<float>(3, 8.0f));
  RoundCarry replay(file);     // ... under a server that resumed two rounds back
  auto c = replay.Begin("run-a", 3);
  REQUIRE(c.ok());
  CHECK(c.value()->control == std::vector<float>(3, 1.0f));
  CHECK(c.value()->vq.residual() == std::vector<float>{1.0f});

  RoundCarry other(file);  // another run in the same folder starts from nothing
  CHECK(ControlAt(other, "run-b", 1).empty());

  RoundCarry memory;  // no file: a restart forgets, a replay still works
  Train(memory, "run-a", 1);
  Train(memory, "run-a", 2);
  CHECK(ControlAt(memory, "run-a", 2) == std::vector<float>(3, 1.0f));
  fs::remove_all(dir);
}

TEST_CASE("a damaged state file is an error naming it; the node then goes on from nothing") {
  const std::string dir = Dir(), file = dir + "/node-1.carry";
  {
    RoundCarry rc(file);
    Train(rc, "run-a", 1);
  }
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  RoundCarry rc(file);
  auto c = rc.Begin("run-a", 2);
  REQUIRE(!c.ok());
  CHECK(c.status().message().find(file) != std::string::npos);
  CHECK(c.status().message().find("cut short") != std::string::npos);
  CHECK(ControlAt(rc, "run-a", 2).empty());
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "not a carry";
  RoundCarry rc2(file);
  CHECK(!rc2.Begin("run-a", 2).ok());
  fs::remove_all(dir);
}

TEST_CASE("a node that carries nothing (FedAvg) writes no state file") {
  const std::string dir = Dir(), file = dir + "/node-2.carry";
  RoundCarry rc(file);
  REQUIRE(rc.Begin("run-a", 1).ok());
  REQUIRE(rc.Commit().ok());
  CHECK(!fs::exists(file));
}
