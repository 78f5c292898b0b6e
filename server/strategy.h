// How a round is configured and its results combined (Flower's Strategy, trimmed to what the
// server loop needs). Results stream in one at a time, so a strategy keeps O(model) state.
// strategies.cc holds the float-update family: FedAvg, FedProx, SCAFFOLD, FedAvgM, FedAdagrad, FedAdam, FedYogi, each with
// the weighted mean or a Byzantine-robust aggregation rule.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/params.h"
#include "codecs/rng.h"
#include "codecs/status.h"
#include "server/dp_fedavg.h"
#include "server/robust_aggregate.h"
#include "server/selection.h"
#include "server/server_optimizer.h"

namespace edgebed {

struct FitResult {
  std::string node_id;
  uint32_t node_index = 0;
  ParamSet update;             // trained minus global, layout checked by the server
  uint64_t num_samples = 0;
  double train_loss = 0.0;
  double train_time_s = 0.0;
  uint64_t peak_train_bytes = 0;  // the node's measured training memory (0 = not measured)
  uint64_t kept_for_backward_bytes = 0;  // of which the autograd graph held at backward
  double virtual_s = 0.0;      // virtual completion time in the round (download + train + upload)
  std::vector<float> control_delta;  // SCAFFOLD: the node's c_i+ - c_i (layout checked by the server)
};

struct FitFailure {
  std::string node_id;
  std::string reason;
};

// One node's evaluation of the global model on its own data (evaluate_res, checked by the server).
struct EvaluateResult {
  std::string node_id;
  uint64_t num_samples = 0;  // capped by the node's partition
  double loss = 0.0;
  double accuracy = 0.0;
};

// The federated evaluation of a round: who was asked, who answered, and the combined figures.
struct EvaluateSummary {
  size_t asked = 0, answered = 0;
  uint64_t samples = 0;
  bool has_figures = false;  // false when no sample was evaluated
  double loss = 0.0, accuracy = 0.0;
};

class Strategy {
 public:
  explicit Strategy(uint32_t evaluate_every = 0) : evaluate_every_(evaluate_every) {}
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  // Nodes to train in `round`, chosen from `available` with `rng`.
  virtual Selection ConfigureFit(uint32_t round, const std::vector<Candidate>& available, Rng& rng) = 0;
  virtual void BeginRound(uint32_t round, const ParamSet& global) = 0;
  // Folds in one accepted result; an error rejects this result only.
  virtual Status Accumulate(const FitResult& result) = 0;
  // The new global model; failures are part of the input, as in Flower's aggregate_fit.
  virtual Result<ParamSet> AggregateFit(uint32_t round, const ParamSet& global,
                                        const std::vector<FitFailure>& failures) = 0;
  // Federated evaluation (Flower's configure_evaluate / aggregate_evaluate). The nodes to evaluate
  // the model aggregated in `round`, given the round's participants; none = no evaluation. By
  // default: every evaluate_every-th round, that round's participants.
  virtual std::vector<std::string> ConfigureEvaluate(uint32_t round, const std::vector<std::string>& participants);
  // The round's answers combined; by default means weighted by each node's sample count.
  virtual EvaluateSummary AggregateEvaluate(uint32_t round, size_t asked, const std::vector<EvaluateResult>& results);
  // SCAFFOLD: the control variate c sent in every fit_ins (null: none), sized by BeginRound.
  virtual const std::vector<float>* FitControl() const { return nullptr; }
  // Figures of the round just aggregated for its metrics row (e.g. dp_epsilon); none by default.
  virtual std::vector<std::pair<std::string, double>> RoundFigures() const { return {}; }
  // What the strategy keeps between rounds (server optimiser moments, control variates), as bytes
  // for the checkpoint; empty for a stateless strategy such as FedAvg. LoadState takes it back.
  virtual std::string SaveState() const { return {}; }
  [[nodiscard]] virtual Status LoadState(const std::string& state) {
    return state.empty() ? Status::Ok()
                         : Status::InvalidArgument("the checkpoint holds strategy state, but federation.strategy = " +
                                                   name() + " keeps none");
  }

 private:
  uint32_t evaluate_every_;
};

struct StrategyOptions {
  std::string name = "fedavg";  // fedavg | fedprox | fedavgm | fedadagrad | fedadam | fedyogi | scaffold
  double fraction = 1.0;  // share of available nodes selected per round, (0, 1]
  SelectionOptions selection;  // its fraction is set from the one above
  ServerOptimizerOptions server;  // lr, momentum, betas, tau; its kind follows from the name
  RobustOptions robust;           // how updates combine; rule "mean" = FedAvg's weighted mean
  DpOptions dp;                   // central differential privacy (DP-FedAvg); off while dp.clip_norm is 0
  uint32_t num_nodes = 0;         // N: SCAFFOLD's c moves by (1 / N) x the sum of the control deltas
  uint32_t evaluate_every = 0;    // every N rounds the round's participants evaluate the new model; 0 = never
};

Result<std::unique_ptr<Strategy>> MakeStrategy(const StrategyOptions& opt);
const std::vector<std::string>& StrategyNames();

}  // namespace edgebed
