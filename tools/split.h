// `edgebed split compare`: the slimmable split network trained in one process with the sandwich rule,
// in-place distillation and the 8-bit bottleneck, against the same network trained unsplit and
// unquantised at width 1.0 (both with a cosine step-size schedule over the epochs): per width test accuracy, bytes per sample on the air, encoder MFLOPs and
// measured encoder latency. And `edgebed bench slimmable`: what switching width costs (time,
// allocations, parameters) against reloading a separately built network.
#pragma once
#include <cstdint>
#include <string>

namespace edgebed {

struct SplitToolOptions {
  int epochs = 4;
  int batch = 32;
  double learning_rate = 0.05, momentum = 0.9;
  uint32_t train_limit = 0, test_limit = 0;
  uint32_t sandwich_random = 1;
  uint64_t seed = 1;
  int threads = 2;
  std::string out = "runs/split-compare";
};

int RunSplitCompare(const SplitToolOptions& opt);
int RunSlimmableBench();

}  // namespace edgebed
