// `edgebed bench`: the figures in BENCHMARKS.md, each measured beside its reference in one run.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgebed {

struct BenchOptions {
  std::string which = "all";  // transfer | aggregate | channel | overhead | population | all
  int reps = 20;
  int overhead_rounds = 3;
  int population_rounds = 20;
  int limit_part = 0;  // `bench limit`: which half of the nodes
  int memory_rounds = 3;
  int split_rounds = 5;
  std::string split_scenario = "scenarios/split.toml";
  std::vector<std::string> memory_uplinks = {"ideal", "digital", "analog_ota", "digital_ota"};
};

int RunBench(const BenchOptions& opt, const std::string& exe);

// `bench memory` (tools/bench_memory.cc): every process's peak RSS and anonymous memory in a default
// run of `rounds` rounds per uplink kind, beside the floor that `bench floor` (RunMemoryFloor) is.
nlohmann::json BenchMemory(int rounds, const std::vector<std::string>& uplinks, const std::string& exe);
int RunMemoryFloor();

// `bench overhead` (tools/bench_overhead.cc): the default federation end to end against the same work
// in plain libtorch processes, one per core (`bench limit --limit-part k`: RunOverheadLimitPart).
nlohmann::json BenchOverhead(int rounds, const std::string& exe);
int RunOverheadLimitPart(int part, int rounds);

// `bench split` (tools/bench_split.cc): split learning's rounds before and after batching the
// decoder and quantising the gradients, and with float32 gradients, side by side.
nlohmann::json BenchSplit(const std::string& scenario, int rounds, const std::string& exe);

// `bench train`: the cnn built in C++ against the same network from TorchScript `module` (its
// layout, e.g. tests/data/torchscript/cnn.pt), and against Debian's PyTorch running `python_script`.
int RunTrainBench(int reps, const std::string& module, const std::string& python_script);

}  // namespace edgebed
