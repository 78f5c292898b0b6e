// Split training and evaluation loops over SlimEncoder / SlimDecoder, torch-free. The node and the
// server run the two halves of TrainSplitStep across a link (node/split_node.cc,
// server/split_server.cc); TrainSplitLocal runs both in one process (the reference and the compare
// tool), with the same widths, quantiser and order.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codecs/rng.h"
#include "splitnets/slimmable.h"

namespace edgebed {

// The widths one training step runs, widest first. train_width > 0: that width alone. Else the
// sandwich rule: the widest, the narrowest and `sandwich_random` others drawn without replacement
// from the widths between them (all of them when there are no more).
std::vector<double> StepWidths(const SlimConfig& cfg, uint32_t sandwich_random, double train_width, Rng& rng);

// The name of the gradient tensor for a width's bottleneck on the wire ("grad_w0.250").
std::string BottleneckGradName(double width);

// Node half of a step: encodes x (n images) at every width (training mode), returning each width's
// bottleneck values in [0, 1].
Status EncodeWidths(SlimEncoder& enc, const float* x, size_t n, const std::vector<double>& widths,
                    std::vector<std::vector<float>>* acts);

struct SplitTrainOptions {
  int epochs = 1;
  int batch_size = 32;
  uint64_t seed = 0;             // batch order and sandwich draws
  uint32_t sandwich_random = 1;
  double train_width = 0.0;
  bool distill = true;
  bool quantise = true;          // false: the float bottleneck goes to the decoder untouched
  std::function<bool(float)> on_progress;  // fraction done; false stops
};

struct SplitTrainStats {
  double mean_loss = 0.0;  // the widest width's cross-entropy
  size_t samples = 0, steps = 0;
  double seconds = 0.0;
};

SplitTrainStats TrainSplitLocal(SlimEncoder& enc, SlimDecoder& dec, const Dataset& data,
                                const std::vector<uint32_t>& indices, const SplitTrainOptions& opt);

// The median of `v` (the upper middle one for an even count); 0 when empty.
double Median(std::vector<double> v);

// Median wall time [ms] of an inference encode of the n images `x` at `width`, over `reps` encodes
// after `warmup` untimed ones. The encoder is left at that width.
double EncodeMedianMs(SlimEncoder& enc, double width, const float* x, size_t n, int reps, int warmup);

struct SplitEval {
  double accuracy = 0.0, loss = 0.0;
  size_t samples = 0;
};

// Test accuracy at `width` (the encoder's width is left there). `link`, when set, is applied to each
// batch's 8-bit codes before the decoder sees them (a channel with bit errors).
SplitEval EvaluateSplit(SlimEncoder& enc, SlimDecoder& dec, const Dataset& data, double width, bool quantise,
                        const std::function<void(std::vector<uint8_t>*)>& link = nullptr);

}  // namespace edgebed
