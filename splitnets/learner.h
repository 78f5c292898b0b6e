// A model that can be trained and evaluated, seen through a torch-free interface so that only
// learner.cc compiles libtorch headers. Parameters cross this interface as ParamSets.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codecs/params.h"
#include "codecs/status.h"
#include "splitnets/dataset.h"

namespace edgebed {

struct TrainOptions {
  int epochs = 1;
  int batch_size = 32;
  float learning_rate = 0.05f;  // SGD step size
  float momentum = 0.0f;        // SGD momentum, 0 = plain SGD (momentum state lives one round)
  std::string optimizer = "sgd";  // sgd | adam (lr = learning_rate, betas 0.9/0.999; state lives one round)
  float weight_decay = 0.0f;    // L2 penalty added to the gradient, both optimisers
  float proximal_mu = 0.0f;     // FedProx (Li et al. 2020): adds mu (w - w_start) to the gradient, the
                                // gradient of (mu / 2) |w - w_start|^2 around the weights Train began from
  // SCAFFOLD (Karimireddy et al. 2020): added to every gradient, in GetParams' flat layout (the
  // trained values come first; the rest is ignored). Null = none.
  const std::vector<float>* gradient_correction = nullptr;
  uint64_t seed = 0;            // batch order
  // Called after every batch with the fraction done (0..1]; returns false to stop early.
  std::function<bool(float)> on_progress;
};

struct TrainStats {
  double mean_loss = 0.0;
  size_t samples = 0;  // samples in the node's data (the FedAvg weight)
  double seconds = 0.0;
  // Measured by the counting CPU allocator (splitnets/transfer.h) when it is installed, else 0:
  // the most bytes training held at once beyond what was live before it (batch, activations kept
  // for backward, gradients, optimizer state).
  int64_t peak_train_bytes = 0;
  // The most bytes the autograd graph (and the loss) held when backward began, over the batches.
  int64_t kept_for_backward_bytes = 0;
  size_t steps = 0;  // optimiser steps taken (SCAFFOLD's K)
};

// Transfer learning from a pretrained IRB backbone with MobileTL (splitnets/transfer.h).
struct TransferConfig {
  std::string backbone;           // pretrained feature extractor (libtorch or TorchScript file)
  std::string mode = "mobiletl";  // mobiletl | full (the same blocks, standard training) | linear (probe)
  int blocks = 2;                 // top IRBs trained, at most (linear: none)
  double memory_budget_kb = 0;    // 0: no limit; else train as many top blocks as fit (transfer.h)
  int batch_size = 32;            // the training the budget is reckoned for: batch,
  bool momentum = false;          // and SGD momentum (one more copy of the gradients)
};

// A module scripted or traced and saved by PyTorch 1.13 (model.name = "torchscript").
struct TorchScriptConfig {
  std::string path;   // the .pt file (torch.jit.save)
  std::shared_ptr<const std::string> bytes;  // the file's bytes, when a node got them on the wire; null = read path
  std::string loss = "auto";  // auto (the module's loss(output, target) if it has one, else mse for float
                              // targets, else cross_entropy) | cross_entropy | mse | module
  double train_flops = 0.0;   // per training sample; 0 = 3 x the forward FLOPs measured on one sample (Learner::Check)
};

// Which network to build: a name from Learner::Models(), its classes (0: regression), and for IRB
// networks an optional transfer set-up (backbone non-empty), for TorchScript the module.
struct ModelSpec {
  std::string name = "cnn";
  int num_classes = 10;
  TransferConfig transfer;
  TorchScriptConfig torchscript;
  bool is_transfer() const { return !transfer.backbone.empty(); }
};

struct EvalStats {
  double loss = 0.0;
  double accuracy = 0.0;
  size_t samples = 0;
  double seconds = 0.0;
};

// Sets libtorch's intra-op threads for this process (nodes use 1: many share a machine), and
// OpenBLAS's to the same number (SetBlasThreads).
void SetTorchThreads(int n);
// OpenBLAS's threads for this process. libtorch sets OpenMP's, not these: Debian's OpenBLAS (the
// pthreads build) starts a thread per core that spins between BLAS calls, so a one-thread node kept
// a second core busy. The count changes the digits of a GEMM (not only its speed).
void SetBlasThreads(int n);

class Learner {
 public:
  // Known models: "cnn" (default, two conv layers), "mlp", "logreg". Weights drawn from `seed`.
  // "torchscript": spec.torchscript's module with its own weights.
  static Result<std::unique_ptr<Learner>> Create(const std::string& model, uint64_t seed);
  // "irbnet" / "irbnet_hs": a MobileNetV2-style IRB network for 28x28 (ReLU6 / Hard-Swish). With
  // spec.transfer.backbone set, the stem and blocks come from that file, the head is drawn from
  // `seed`, and the learner exchanges (GetParams/SetParams/specs) only what it trains.
  static Result<std::unique_ptr<Learner>> Create(const ModelSpec& spec, uint64_t seed);
  static std::vector<std::string> Models();
  struct Impl;  // splitnets/learner_impl.h
  static std::unique_ptr<Learner> Wrap(std::unique_ptr<Impl> impl);  // for splitnets' model builders
  ~Learner();

  const std::string& model_name() const;
  const std::vector<TensorSpec>& specs() const;
  ParamSet GetParams() const;
  Status SetParams(const ParamSet& p);  // checks layout

  // Local training over `indices` of `data` (the model's loss). Empty indices: nothing done. An
  // error (a module that throws in forward, a NaN loss) names the model and leaves a Status.
  Result<TrainStats> Train(const Dataset& data, const std::vector<uint32_t>& indices, const TrainOptions& opt);
  // Evaluates on `indices` of `data`, or on all of it when indices is null (regression: accuracy 0).
  Result<EvalStats> Evaluate(const Dataset& data, const std::vector<uint32_t>* indices = nullptr) const;
  // Runs one batch of `data` forward and backward without changing the model: checks the output's
  // shape against the classes or targets, and that the loss is finite and differentiable. Errors
  // name the model, the tensor and both shapes. TorchScript modules also measure their FLOPs here
  // (ForwardFlops is 0 before, and stays 0 for a module that cannot be frozen).
  Status Check(const Dataset& data);
  // Writes the model: a libtorch archive (torch::load-able into the same architecture), or for
  // TorchScript a module torch.jit.load reads.
  Status Save(const std::string& path) const;
  // FLOPs of one forward pass for one sample (multiply-add = 2), counted from the layers.
  int64_t ForwardFlops() const;
  // FLOPs of training on one sample: forward everywhere, backward only where something trains.
  int64_t TrainFlops() const;
  // Bytes of every parameter and float buffer of the network (= GetParams().bytes() unless only a
  // part trains): what full-model FedAvg would send.
  uint64_t FullModelBytes() const;
  // Values of GetParams() that training changes through gradients (the first ones; float buffers follow).
  size_t TrainedValues() const;
  // Transfer learners: the number of top IRBs trained (after the memory budget); -1 otherwise.
  int TrainableBlocks() const;
  // IRB networks: writes the stem and blocks (not the head) as a backbone for transfer.
  Status SaveBackbone(const std::string& path) const;

 private:
  explicit Learner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgebed
