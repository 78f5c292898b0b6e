// The libtorch side of MobileTL (see transfer.h): the two custom autograd functions and the IRB
// network they serve. Included by mobiletl.cc and by the gradient tests only.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "splitnets/transfer.h"

namespace edgebed::mobiletl {

enum Activation : int64_t { kRelu6 = 0, kHardSwish = 1 };

// The activation's value, and the 1-bit mask MobileTL keeps for backward: ReLU6: 1 on (0, 6), its
// exact derivative; Hard-Swish: 1 on (0, inf), the step (sign) approximation of its derivative.
torch::Tensor Activate(const torch::Tensor& x, Activation act);
bool MaskBit(float x, Activation act);

// Bit-packs MaskBit over x (contiguous float) into ceil(numel / 8) bytes, bit j of byte i = element
// 8 i + j; and multiplies a gradient by such a mask.
torch::Tensor PackMask(const torch::Tensor& x, Activation act);
torch::Tensor ApplyMask(const torch::Tensor& grad, const torch::Tensor& packed);

// y = Activate(x); backward: grad * mask, from the packed mask alone.
struct MaskedActivation : torch::autograd::Function<MaskedActivation> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t act);
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads);
};

// A BN with frozen scale and running statistics: y = x * a + (bias - mean * a), a = weight /
// sqrt(running_var + eps) per channel. Only `bias` gets a gradient; backward keeps nothing but a.
struct ShiftOnlyBatchNorm : torch::autograd::Function<ShiftOnlyBatchNorm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& bias, const torch::Tensor& weight,
                               const torch::Tensor& running_mean, const torch::Tensor& running_var, double eps);
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads);
};

// A frozen BN (running statistics) applied in place: h = h * a + (bias - mean * a). Inference only.
void FrozenBatchNorm_(torch::Tensor& h, const torch::nn::BatchNorm2d& bn);

struct IrbBlockImpl : torch::nn::Module {
  IrbBlockImpl(const IrbShape& shape, Activation act);
  torch::Tensor forward(const torch::Tensor& x);
  // The frozen block under NoGradGuard: BN from running statistics and the activation in place, so at
  // most the input and one expanded tensor are alive (the same values as forward in eval mode).
  torch::Tensor ForwardFrozen(const torch::Tensor& x);
  // Standard: every layer as libtorch builds it. MobileTL: while training with grad enabled, bn1/bn2
  // are ShiftOnlyBatchNorm and the activations MaskedActivation (evaluation is the same function).
  void SetRule(TrainRule rule);
  IrbShape shape;
  Activation act;
  TrainRule rule = TrainRule::kStandard;
  torch::nn::Conv2d expand{nullptr}, depthwise{nullptr}, project{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
};
TORCH_MODULE(IrbBlock);

struct StemImpl : torch::nn::Module {
  explicit StemImpl(Activation act);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor ForwardFrozen(const torch::Tensor& x);  // as IrbBlockImpl::ForwardFrozen
  Activation act;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(Stem);

// The backbone: stem then IrbNetBlocks(); parameter names "stem.conv.weight", "blocks.3.bn2.bias", ...
// (tools/export_torchscript_backbone.py builds the same names in PyTorch).
struct FeaturesImpl : torch::nn::Module {
  explicit FeaturesImpl(Activation act);
  torch::Tensor forward(const torch::Tensor& x);
  Stem stem{nullptr};
  std::vector<IrbBlock> blocks;
  torch::nn::ModuleList block_list{nullptr};
};
TORCH_MODULE(Features);

// Copies every parameter and float buffer of `f` from a file written by torch::save (C++) or by
// TorchScript's save (PyTorch), matched by name; errors name the file, the tensor and the shapes.
Status LoadBackbone(Features& f, const std::string& path);

}  // namespace edgebed::mobiletl
