// How the server moves the global model by a round's aggregated update (the pseudo-gradient's
// negative): plain FedAvg (x += delta), server momentum (FedAvgM, Hsu et al. 2019:
// v = momentum v + delta, x += lr v), or an adaptive server optimiser (FedAdagrad, FedAdam, FedYogi;
// Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2: m = beta1 m + (1 - beta1) delta;
// Adagrad v += delta^2, Adam v = beta2 v + (1 - beta2) delta^2, Yogi v -= (1 - beta2) delta^2
// sign(v - delta^2); x += lr m / (sqrt(v) + tau), with m starting at 0 and v at tau^2).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct ServerOptimizerOptions {
  std::string kind = "none";  // none | momentum | adagrad | adam | yogi
  double lr = 1.0;            // server learning rate eta, (0, 10]
  double momentum = 0.9;      // momentum: beta in [0, 1)
  double beta1 = 0.9;         // adaptive: first moment decay in [0, 1)
  double beta2 = 0.99;        // adam, yogi: second moment decay in [0, 1)
  double tau = 1e-3;          // adaptive: degree of adaptivity, (0, 1]
};

class ServerOptimizer {
 public:
  // Errors name the field (federation.server_lr, ...) and its range.
  [[nodiscard]] static Result<std::unique_ptr<ServerOptimizer>> Create(const ServerOptimizerOptions& opt);

  // x += the step for `delta` (x and delta of one size; the state is sized on the first call).
  [[nodiscard]] Status Step(const std::vector<float>& delta, std::vector<float>* x);
  // The moments, as bytes for the checkpoint; Load takes them back (checked against the kind).
  std::string Save() const;
  [[nodiscard]] Status Load(const std::string& bytes);
  const std::string& kind() const { return opt_.kind; }

 private:
  explicit ServerOptimizer(ServerOptimizerOptions opt) : opt_(std::move(opt)) {}
  ServerOptimizerOptions opt_;
  std::vector<float> m_, v_;  // momentum: v_ only
};

}  // namespace edgebed
