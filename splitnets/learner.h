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
  uint64_t seed = 0;            // batch order
  // Called after every batch with the fraction done (0..1]; returns false to stop early.
  std::function<bool(float)> on_progress;
};

struct TrainStats {
  double mean_loss = 0.0;
  size_t samples = 0;  // samples in the node's data (the FedAvg weight)
  double seconds = 0.0;
};

struct EvalStats {
  double loss = 0.0;
  double accuracy = 0.0;
  size_t samples = 0;
  double seconds = 0.0;
};

// Sets libtorch's intra-op threads for this process (nodes use 1: many share a machine).
void SetTorchThreads(int n);

class Learner {
 public:
  // Known models: "cnn" (default, two conv layers), "mlp", "logreg". Weights drawn from `seed`.
  static Result<std::unique_ptr<Learner>> Create(const std::string& model, uint64_t seed);
  static std::vector<std::string> Models();
  ~Learner();

  const std::string& model_name() const;
  const std::vector<TensorSpec>& specs() const;
  ParamSet GetParams() const;
  Status SetParams(const ParamSet& p);  // checks layout

  // Local SGD over `indices` of `data` (cross-entropy). Empty indices: nothing done.
  TrainStats Train(const Dataset& data, const std::vector<uint32_t>& indices, const TrainOptions& opt);
  // Evaluates on `indices` of `data`, or on all of it when indices is null.
  EvalStats Evaluate(const Dataset& data, const std::vector<uint32_t>* indices = nullptr) const;
  // Writes the model as a libtorch archive (torch::load-able into the same architecture).
  Status Save(const std::string& path) const;
  // FLOPs of one forward pass for one sample (multiply-add = 2), counted from the layers.
  int64_t ForwardFlops() const;

 private:
  struct Impl;
  explicit Learner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgebed
