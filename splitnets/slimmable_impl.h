// What SlimEncoder is inside (libtorch), and the helpers the encoder (slimmable.cc) and the decoder
// (slim_decoder.cc) share; also for the test that rebuilds one width from plain libtorch layers
// holding the sliced weights.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "splitnets/slimmable.h"

namespace edgebed {

// Base output channels of the encoder's four convolutions at width 1.0 (the last is the bottleneck,
// config().bottleneck_channels); strides and kernel sizes in kEncoderStride / kEncoderKernel.
constexpr int kEncoderBase[3] = {32, 64, 64};
constexpr int kEncoderStride[4] = {1, 2, 2, 1};
constexpr int kEncoderKernel[4] = {3, 3, 3, 1};
constexpr int kDecoderChannels = 64;  // 7x7, then 4x4 after the strided convolution
constexpr int kDecoderHidden = 128;

namespace slim {
std::string WidthList(const SlimConfig& cfg);  // "{0.250, 0.500}"
Status UnknownWidth(const SlimConfig& cfg, double width);  // names the width and the network's widths
std::unique_ptr<torch::optim::SGD> MakeSgd(const std::vector<torch::Tensor>& params, SgdConfig sgd);
torch::Tensor ConvWeight(int out, int in, int k);  // He initialisation for its full fan-in
// Registers BN layers [width] for channels(width).
std::vector<torch::nn::BatchNorm2d> SwitchableBn(torch::nn::Module* m, const std::string& name,
                                                 const std::vector<int>& channels);
// Parameters first, then BN running statistics: the exchanged state and its specs.
void CollectState(torch::nn::Module& m, std::vector<torch::Tensor>* state, std::vector<TensorSpec>* specs);
// Parameters, buffers and the SGD's momentum as bytes in torch's archive format; `what` names the
// network in errors.
Result<std::string> SaveTraining(const torch::nn::Module& m, const torch::optim::SGD* opt, const char* what);
Status LoadTraining(torch::nn::Module& m, torch::optim::SGD* opt, const std::string& bytes, const char* what);
void SetLr(torch::optim::SGD& opt, float lr);
torch::Tensor FromFloats(const float* p, std::vector<int64_t> shape);  // a copy
torch::Tensor Labels(const uint8_t* labels, size_t n);                  // int64
}  // namespace slim

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
