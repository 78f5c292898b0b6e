// On-device transfer learning with MobileTL (Chiang et al., AAAI 2023) on a MobileNetV2-style network
// of inverted residual blocks (IRBs) sized for 28x28 images; torch-free API (mobiletl.cc holds the
// libtorch side).
//
// MobileTL training of the top k IRBs: convolution weights train as usual; the two internal BNs train
// only their shift, as y = x * a + b with a per-channel constant a (running statistics frozen), so
// nothing but a is kept for backward; the last BN of a block trains fully; the activation (ReLU6 or
// Hard-Swish) keeps a bit-packed 1-bit mask and its backward is the mask (for ReLU6 that is the exact
// derivative, 1 on (0, 6); for Hard-Swish the step 1[x > 0], the sign approximation); the blocks below
// run frozen with no graph built. Baselines from the same code: "full" trains the same top k blocks
// with standard layers, "linear" trains only the classifier (a linear probe).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "splitnets/dataset.h"
#include "splitnets/learner.h"

namespace edgebed {

// One IRB of the network: expand 1x1 (in -> hidden) at in_hw, depthwise 3x3 with `stride`, project
// 1x1 (hidden -> out); residual when stride 1 and in == out.
struct IrbShape {
  int in = 0, out = 0, hidden = 0, stride = 1, in_hw = 0;
  int out_hw() const { return (in_hw + stride - 1) / stride; }
  bool residual() const { return stride == 1 && in == out; }
};

// The blocks of "irbnet" / "irbnet_hs" (after a 3x3 stem conv of 16 channels at 28x28), bottom first.
const std::vector<IrbShape>& IrbNetBlocks();

enum class TrainRule { kStandard, kMobileTl };

// Bytes one IRB keeps for backward beyond its input (which the block below already holds), for a
// batch of `batch`, counted from what each layer saves: standard: the inputs of the three BNs, of the
// two activations, of the depthwise and project convs, and each BN's batch mean and inverse std;
// MobileTL: a (per channel) for the two internal BNs, two bit-packed masks, the inputs of the
// depthwise and project convs, and the last BN's input, mean and inverse std.
int64_t RetainedBytesAnalytic(const IrbShape& b, TrainRule rule, int batch);

// The same, measured: runs one block forward in training mode on a random input (drawn from `seed`)
// under the counting allocator and counts the bytes the autograd graph holds once the caller's
// references to output and input are gone (the input is allocated before counting starts, as above).
// `activation` is "relu6" or "hardswish".
Result<int64_t> MeasureRetainedBytes(const IrbShape& b, TrainRule rule, const std::string& activation, int batch,
                                     uint64_t seed);

// Bytes a transfer learner keeps for backward when training the top k blocks ("linear": k = 0) at
// `batch`: for each trained block its input (its expand conv keeps it; the block below, frozen or
// ending in BN / residual add, keeps no copy of its output) and RetainedBytesAnalytic, then the
// classifier's input and the loss (log-softmax, value, total weight).
int64_t KeptForBackwardAnalytic(const std::string& mode, int k, int batch, int num_classes);

// Memory the memory budget is checked against: KeptForBackwardAnalytic plus the gradients of what
// trains (and as much again for SGD momentum when `momentum`).
int64_t TrainingBytesAnalytic(const std::string& mode, int k, int batch, int num_classes, bool momentum);

// The most top blocks (at most cfg.blocks) whose TrainingBytesAnalytic fits cfg.memory_budget_kb.
// A budget too small for one block is an error naming the budget and the minimum.
Result<int> BlocksWithinBudget(const TransferConfig& cfg, int num_classes);

// Parses "5-9" or "5,6,7" (classes 0..max_class) into a list; errors name `field`.
Result<std::vector<int>> ParseClasses(const std::string& text, const std::string& field, int max_class = 9);
std::string FormatClasses(const std::vector<int>& classes);

// The samples of `classes`, relabelled by their position in the list; num_classes = classes.size().
Dataset SelectClasses(const Dataset& d, const std::vector<int>& classes);

// A counting CPU allocator for libtorch (c10::SetCPUAllocator): live and peak bytes of every tensor
// allocated after installation. Installing is process-wide and idempotent.
void InstallCountingAllocator();
bool CountingAllocatorInstalled();
int64_t CountedLiveBytes();
int64_t CountedPeakBytes();
void ResetCountedPeak();  // peak := live

// Learner::Create for IRB networks (mobiletl.cc).
Result<std::unique_ptr<Learner>> CreateIrbLearner(const ModelSpec& spec, uint64_t seed);

// CRC-32 of a file (nodes check that their backbone is the server's); errors name the file.
Result<uint32_t> FileCrc32(const std::string& path);

}  // namespace edgebed
