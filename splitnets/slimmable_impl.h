// What SlimEncoder is inside (libtorch): for slimmable.cc and for the test that rebuilds one width
// from plain libtorch layers holding the sliced weights.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <vector>

#include "splitnets/slimmable.h"

namespace edgebed {

// Base output channels of the encoder's four convolutions at width 1.0 (the last is the bottleneck,
// config().bottleneck_channels); strides and kernel sizes in kEncoderStride / kEncoderKernel.
constexpr int kEncoderBase[3] = {32, 64, 64};
constexpr int kEncoderStride[4] = {1, 2, 2, 1};
constexpr int kEncoderKernel[4] = {3, 3, 3, 1};

struct SlimEncoder::Impl : torch::nn::Module {
  SlimConfig cfg;
  int active = 0;                               // index into cfg.widths
  std::vector<torch::Tensor> weight;            // 4 convolutions, full width [out, in, k, k]
  std::vector<std::vector<torch::nn::BatchNorm2d>> bn;  // [layer][width index]
  std::unique_ptr<torch::optim::SGD> opt;
  std::map<int, torch::Tensor> pending;         // width index -> the last train Encode's output
  std::vector<torch::Tensor> state;             // parameters, then BN running statistics
  std::vector<TensorSpec> specs;
  int Channels(int layer, int widx) const;      // output channels of `layer` at width index widx
  torch::Tensor Forward(const torch::Tensor& x, int widx);
};

}  // namespace edgebed
