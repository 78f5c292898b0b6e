// `edgebed bench`: the figures in BENCHMARKS.md, each measured beside its reference in one run.
#pragma once
#include <string>

namespace edgebed {

struct BenchOptions {
  std::string which = "all";  // transfer | aggregate | channel | overhead | population | all
  int reps = 20;
  int overhead_rounds = 3;
  int population_rounds = 20;
};

int RunBench(const BenchOptions& opt, const std::string& exe);

// `bench train`: the cnn built in C++ against the same network from TorchScript `module` (its
// layout, e.g. tests/data/torchscript/cnn.pt), and against Debian's PyTorch running `python_script`.
int RunTrainBench(int reps, const std::string& module, const std::string& python_script);

}  // namespace edgebed
