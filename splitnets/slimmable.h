// Slimmable split network for Fashion-MNIST (Yu et al.'s slimmable layers, Assine et al.'s slimmable
// encoders). The encoder (the node's head) runs at a width chosen at run
// time: every convolution uses the first channels of one shared weight, each width has its own batch
// norms, and switching width only changes which slice and which BN are used (nothing is allocated or
// reloaded). The encoder ends in a 7x7 bottleneck of round(w x bottleneck_channels) channels squashed
// into [0, 1] by a sigmoid, which the codec quantises to 8 bits (codecs/activation_codec.h): the bytes
// per sample are 49 x channels. The decoder (the server's tail) takes any width's bottleneck.
//
// Torch-free interface: only slimmable.cc includes libtorch.
//
//   encoder (node):  conv3x3 1->32w, BN_w, ReLU       28x28
//                    conv3x3/2 32w->64w, BN_w, ReLU   14x14
//                    conv3x3/2 64w->64w, BN_w, ReLU    7x7
//                    conv1x1 64w->8w, BN_w, sigmoid    7x7   <- the bottleneck on the air
//   decoder (server): conv3x3 c->64, BN_w, ReLU         7x7
//                     conv3x3/2 64->64, BN_w, ReLU      4x4
//                     linear 1024->128, ReLU, linear 128->10
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/params.h"
#include "codecs/status.h"
#include "splitnets/dataset.h"

namespace edgebed {

struct SlimConfig {
  std::vector<double> widths = {0.25, 0.5, 0.75, 1.0};  // ascending, each in (0, 1]
  int bottleneck_channels = 8;                          // at width 1.0
  int num_classes = 10;
  Status Validate() const;  // names split.widths / split.bottleneck_channels and the ranges
};

constexpr int kBottleneckSide = 7;  // the bottleneck is 7x7 per channel

// Channels of a layer with `base` channels at width w: max(1, round(w x base)).
int SlimChannels(int base, double width);
int BottleneckChannels(const SlimConfig& cfg, double width);
// Bytes per sample on the air at 8 bits: 49 x BottleneckChannels.
uint64_t BottleneckBytesPerSample(const SlimConfig& cfg, double width);
// A width as metrics keys and messages write it: "0.250", "1.000".
std::string WidthLabel(double width);
// FLOPs (multiply-add = 2) of the encoder / decoder forward for one sample at width w, from the layer
// shapes (BN and activations not counted).
int64_t EncoderFlops(const SlimConfig& cfg, double width);
int64_t DecoderFlops(const SlimConfig& cfg, double width);
// Index of `width` in cfg.widths (exact up to 1e-9), or -1.
int WidthIndex(const SlimConfig& cfg, double width);

// Sets the SGD step size and momentum (one optimizer per module, momentum kept across steps).
struct SgdConfig {
  float learning_rate = 0.05f;
  float momentum = 0.0f;
};

// The node's half: encoder at a run-time width.
class SlimEncoder {
 public:
  static Result<std::unique_ptr<SlimEncoder>> Create(const SlimConfig& cfg, uint64_t seed, SgdConfig sgd = {});
  ~SlimEncoder();
  const SlimConfig& config() const;
  // Switches the active width (one of config().widths): sets the slice and BN on every layer.
  Status SetWidth(double width);
  double width() const;
  // Normalised images [n, 1, 28, 28] of samples idx[0, n) of `d` (what Encode takes), and labels.
  static void Images(const Dataset& d, const uint32_t* idx, size_t n, std::vector<float>* x,
                     std::vector<uint8_t>* labels);
  // Encodes n images at the active width into `act` (n x c x 7 x 7 values in [0, 1]). train = true:
  // batch-statistics BN (updating this width's running stats) and the graph kept for Backward().
  Status Encode(const float* x, size_t n, bool train, std::vector<float>* act);
  // Backpropagates `grad` (d loss / d act of the last train Encode at `width`; the quantiser is
  // passed straight through) and accumulates parameter gradients. Each train Encode at a width can be
  // backpropagated once.
  Status Backward(double width, const std::vector<float>& grad);
  void Step();  // one SGD step on the accumulated gradients, then zero them; drops pending graphs
  void Discard();  // drops pending graphs and accumulated gradients without a step
  void SetLearningRate(float lr);  // a schedule's step size from now on
  // Every parameter and BN statistic of all widths (what SplitFed averages).
  const std::vector<TensorSpec>& specs() const;
  ParamSet GetParams() const;
  Status SetParams(const ParamSet& p);
  int64_t NumParameterValues() const;            // sum of numel over parameters
  std::vector<const void*> ParameterData() const;  // data pointers of every parameter (switch test)
  Status Save(const std::string& path) const;
  // Everything training changes (parameters, batch-norm statistics, SGD momentum) as bytes, for a
  // node's state across rounds and restarts; LoadTrainingState takes it back.
  [[nodiscard]] Result<std::string> SaveTrainingState() const;
  [[nodiscard]] Status LoadTrainingState(const std::string& bytes);
  struct Impl;
  Impl* impl() const { return impl_.get(); }  // for tests that rebuild a width with plain layers

 private:
  SlimEncoder() = default;
  std::unique_ptr<Impl> impl_;
};

// What the decoder does with one training batch: every width's loss, the gradients w.r.t. its input.
struct DecoderStep {
  std::vector<double> loss;                 // per width, in input order
  std::vector<size_t> correct;              // per width
  std::vector<std::vector<float>> grad;     // per width, d loss / d input
};

// The server's half: decoder and classifier, BN per width.
class SlimDecoder {
 public:
  static Result<std::unique_ptr<SlimDecoder>> Create(const SlimConfig& cfg, uint64_t seed, SgdConfig sgd = {});
  ~SlimDecoder();
  const SlimConfig& config() const;
  struct Input {
    double width = 1.0;
    const float* act = nullptr;  // n x BottleneckChannels(width) x 7 x 7
  };
  // One training step on a batch seen at several widths, widest first (sandwich rule). The first
  // learns from the labels; with `distill` the others learn from its detached soft output (in-place
  // distillation), else from the labels. Gradients of all widths are summed before one SGD step.
  // Errors name the width that is not in config().widths.
  Result<DecoderStep> TrainStep(const std::vector<Input>& in, size_t n, const uint8_t* labels, bool distill);
  // One node's training batch: its inputs at the step's widths (widest first), n samples, labels.
  struct Batch {
    std::vector<Input> in;
    size_t n = 0;
    const uint8_t* labels = nullptr;
  };
  // One step over K nodes' batches at once (what TrainStep is for one): the inputs at each width
  // are stacked and cross the decoder together (batch norm over all of them). Each batch's input
  // gradients are those of its own TrainStep loss at these weights (but for batch norm's
  // statistics, now over all batches); the parameters take one SGD step on the sum of the batches'
  // gradients over sqrt(K) (the square-root scaling rule). On scenarios/split.toml the sum (K
  // batches standing for K sequential steps) diverged in round 1 at momentum 0.9, the mean ended
  // 2-4 points below one batch per step after 5 rounds, sqrt(K) within half a point of it
  // (BENCHMARKS.md). Results in batch order. Errors name the batch and what is wrong; nothing
  // changes on one.
  Result<std::vector<DecoderStep>> TrainBatches(const std::vector<Batch>& batches, bool distill);
  // Class scores -> predicted classes (and the cross-entropy summed over the batch when labels given).
  void SetLearningRate(float lr);
  Status Predict(const Input& in, size_t n, std::vector<uint8_t>* classes, const uint8_t* labels = nullptr,
                 double* loss_sum = nullptr);
  const std::vector<TensorSpec>& specs() const;
  ParamSet GetParams() const;
  Status SetParams(const ParamSet& p);
  Status Save(const std::string& path) const;
  // Everything training changes (parameters, batch-norm statistics and counters, SGD momentum) as
  // bytes in torch's archive format, for a checkpoint; LoadTrainingState takes it back (an error
  // says what does not fit).
  [[nodiscard]] Result<std::string> SaveTrainingState() const;
  [[nodiscard]] Status LoadTrainingState(const std::string& bytes);

 private:
  SlimDecoder() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The unsplit reference: the same encoder + decoder at width 1.0 as one network, no quantiser.
// (SlimEncoder/SlimDecoder with widths {1.0} and the float bottleneck passed on untouched is this.)

}  // namespace edgebed
