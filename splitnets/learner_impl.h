// What a Learner is inside (libtorch). Only the splitnets translation units that build models
// include this: learner.cc (the small zoo, train and evaluate loops) and mobiletl.cc (IRB networks,
// MobileTL transfer learning).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "splitnets/learner.h"

namespace edgebed {

struct Learner::Impl {
  std::string name;
  std::string source;          // the file it came from, for errors (TorchScript)
  bool exact_outputs = false;  // Check: outputs must equal the classes (the zoo keeps 10 and uses the first)
  std::shared_ptr<torch::nn::Module> root;  // the whole network (Save, train/eval mode); null for TorchScript
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::function<void(bool training)> set_mode;  // default: root->train(training)
  // Mean loss of a batch; default cross-entropy on class labels.
  std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& target)> loss;
  std::function<Status(const std::string&)> save;  // default: SaveModule(*root)
  std::function<int64_t(const torch::Tensor& one_sample)> measure_forward_flops;  // TorchScript: profiled
  bool flops_given = false;  // train_flops from the scenario: keep it
  std::function<Status(const std::string&)> save_backbone;  // IRB networks only
  std::vector<torch::Tensor> trainable;  // what SGD updates
  std::vector<torch::Tensor> state;      // what is exchanged: trainable parameters, then float buffers
  std::vector<TensorSpec> specs;
  int64_t forward_flops = 0;
  int64_t train_flops = 0;        // one sample's forward + backward
  uint64_t full_model_bytes = 0;  // every parameter and float buffer of the network
  int trainable_blocks = -1;      // transfer learners: top IRBs trained
};

// Copies samples idx[0, count) into a normalised [B, 1, rows, cols] tensor and their labels.
void MakeBatch(const Dataset& d, const uint32_t* idx, size_t count, torch::Tensor* x, torch::Tensor* y);

// Fills state/specs from `trainable` and the float buffers `buffers` (named), full_model_bytes from
// root (or, without root, from `all_params` and the buffers), and the default mode, loss and save.
void FinishImpl(Learner::Impl* impl, const std::vector<std::pair<std::string, torch::Tensor>>& trainable,
                const std::vector<std::pair<std::string, torch::Tensor>>& buffers);

// Parameters and buffers (in `state` order) <-> a ParamSet of layout `specs`; the setter checks it.
ParamSet StateToParams(const std::vector<torch::Tensor>& state, const std::vector<TensorSpec>& specs);
Status ParamsToState(const ParamSet& p, const std::vector<TensorSpec>& specs, std::vector<torch::Tensor>* state);
// Writes a model file through `write(tmp)` then a rename, so it is replaced whole or not at all; the
// error names the path.
Status SaveModelFile(const std::string& path, const std::function<void(const std::string& tmp)>& write);
// Writes a module as a libtorch archive (SaveModelFile).
Status SaveModule(const torch::nn::Module& m, const std::string& path);

// libtorch's message without its C++ backtrace; a TorchScript traceback shortened to its first and
// last lines (what failed, and why).
std::string TorchMessage(const std::exception& e);

// Learner::Create for model "torchscript" (torchscript.cc).
Result<std::unique_ptr<Learner>> CreateTorchScriptLearner(const ModelSpec& spec);

}  // namespace edgebed
