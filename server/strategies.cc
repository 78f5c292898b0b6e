// The float-update strategies (FedProx is FedAvg here; its proximal term is the nodes', sent in
// fit_ins.proximal_mu; SCAFFOLD's control variates travel in fit_ins.control and fit_res.control_delta,
// Karimireddy et al. 2020, option II): how the round's updates combine into one (the weighted mean of FedAvg
// (McMahan et al. 2017), or a Byzantine-robust rule, robust_aggregate.h) and how the server moves the
// model by it (plain, FedAvgM, FedAdagrad, FedAdam, FedYogi: server_optimizer.h). The mean and norm
// bounding stream (one accumulator the size of the model); the other robust rules keep the round's updates.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "server/aggregate.h"
#include "server/dp_fedavg.h"
#include "server/robust_aggregate.h"
#include "server/server_optimizer.h"
#include "server/strategy.h"

namespace edgebed {
namespace {

class UpdateStrategy final : public Strategy {
 public:
  UpdateStrategy(std::string name, SelectionOptions selection, RobustOptions robust, std::optional<DpAggregator> dp,
                 std::unique_ptr<ServerOptimizer> opt, uint32_t scaffold_nodes, bool unweighted,
                 uint32_t evaluate_every)
      : Strategy(evaluate_every), name_(std::move(name)), selection_(std::move(selection)), robust_(std::move(robust)), dp_(std::move(dp)),
        opt_(std::move(opt)), scaffold_nodes_(scaffold_nodes), unweighted_(unweighted) {}
  std::string name() const override { return name_; }

  Selection ConfigureFit(uint32_t, const std::vector<Candidate>& available, Rng& rng) override {
    return SelectNodes(selection_, available, rng);
  }

  void BeginRound(uint32_t, const ParamSet& global) override {
    size_ = global.flat.size();
    mean_.Reset(streaming() && !dp_.has_value() ? size_ : 0);
    if (dp_) dp_->BeginRound(size_);
    if (scaffold_nodes_ > 0) {
      if (control_.size() != size_) control_.assign(size_, 0.0f);  // c starts at 0
      control_sum_.assign(size_, 0.0);
    }
    updates_.clear();
    weights_.clear();
  }

  Status Accumulate(const FitResult& r) override {
    if (r.update.flat.size() != size_)
      return Status::InvalidArgument("update of " + r.node_id + " has " + std::to_string(r.update.flat.size()) +
                                     " values, the model has " + std::to_string(size_));
    if (r.num_samples == 0) return Status::InvalidArgument("update of " + r.node_id + " has num_samples = 0");
    if (dp_) {  // DP-FedAvg: every node counts once, clipped
      dp_->Add(r.update.flat);
    } else if (scaffold_nodes_ > 0) {  // SCAFFOLD: the plain mean of the updates, and the control deltas' sum
      if (r.control_delta.size() != size_)
        return Status::InvalidArgument("update of " + r.node_id + " has no control delta of the model's size (SCAFFOLD)");
      mean_.Add(r.update.flat.data(), r.update.flat.size(), 1.0);
      for (size_t i = 0; i < size_; ++i) control_sum_[i] += r.control_delta[i];
    } else if (robust_.rule == "norm_bound") {  // clipped as it arrives, then the mean: it streams too
      std::vector<float> clipped = r.update.flat;
      ClipToNorm(&clipped, robust_.clip_norm);  // erased values count as 0, as in RobustAggregate
      mean_.Add(clipped.data(), clipped.size(), unweighted_ ? 1.0 : static_cast<double>(r.num_samples));
    } else if (streaming()) {
      mean_.Add(r.update.flat.data(), r.update.flat.size(), unweighted_ ? 1.0 : static_cast<double>(r.num_samples));
    } else {
      updates_.push_back(r.update.flat);
      weights_.push_back(unweighted_ ? 1.0 : static_cast<double>(r.num_samples));
    }
    return Status::Ok();
  }

  Result<ParamSet> AggregateFit(uint32_t round, const ParamSet& global, const std::vector<FitFailure>&) override {
    std::vector<float> delta(size_);
    if (dp_) {
      EDGEBED_ASSIGN_OR_RETURN(delta, dp_->Finish(round));
    } else if (streaming()) {
      if (mean_.count() == 0) return Status::Unavailable("round " + std::to_string(round) + ": no update to aggregate");
      mean_.Mean(delta.data());
    } else {
      auto agg = RobustAggregate(updates_, weights_, robust_);
      if (!agg.ok()) return Status::Unavailable("round " + std::to_string(round) + ": " + agg.status().message());
      delta = std::move(agg).value();
    }
    ParamSet next = global;
    EDGEBED_RETURN_IF_ERROR(opt_->Step(delta, &next.flat));
    if (scaffold_nodes_ > 0)  // c <- c + (1 / N) sum of the control deltas
      for (size_t i = 0; i < size_; ++i) control_[i] += static_cast<float>(control_sum_[i] / scaffold_nodes_);
    return next;
  }

  const std::vector<float>* FitControl() const override { return scaffold_nodes_ > 0 ? &control_ : nullptr; }

  std::vector<std::pair<std::string, double>> RoundFigures() const override {
    return dp_ ? dp_->Figures() : std::vector<std::pair<std::string, double>>{};
  }

  // With DP its rounds and clipping norm, then the server optimiser's moments.
  std::string SaveState() const override {
    std::string out = dp_ ? dp_->Save() : std::string();
    if (scaffold_nodes_ > 0) {  // c, behind its length
      const uint64_t n = control_.size();
      out += "EBSC1" + std::string(reinterpret_cast<const char*>(&n), 8) +
             std::string(reinterpret_cast<const char*>(control_.data()), n * 4);
    }
    return out + opt_->Save();
  }
  Status LoadState(const std::string& state) override {
    std::string rest = state;
    if (dp_) {  // its 21 bytes come first
      Status st = dp_->Load(rest.substr(0, 21));
      if (!st.ok()) return Status::InvalidArgument("federation.strategy = " + name_ + ": " + st.message());
      rest = rest.substr(std::min<size_t>(21, rest.size()));
    }
    if (scaffold_nodes_ > 0) {
      uint64_t n = 0;
      if (rest.size() < 13 || rest.compare(0, 5, "EBSC1") != 0)
        return Status::InvalidArgument("federation.strategy = " + name_ + ": the checkpoint holds no control variate");
      std::memcpy(&n, rest.data() + 5, 8);
      if (n > (1ull << 34) || rest.size() < 13 + n * 4)
        return Status::Corruption("federation.strategy = " + name_ + ": the checkpoint's control variate is cut short");
      control_.resize(n);
      std::memcpy(control_.data(), rest.data() + 13, n * 4);
      rest = rest.substr(13 + n * 4);
    }
    Status st = opt_->Load(rest);
    return st.ok() ? st : Status::InvalidArgument("federation.strategy = " + name_ + ": " + st.message());
  }

 private:
  bool streaming() const { return robust_.rule == "mean" || robust_.rule == "norm_bound" || dp_.has_value(); }
  std::string name_;
  SelectionOptions selection_;
  RobustOptions robust_;
  std::optional<DpAggregator> dp_;  // DP-FedAvg's clipping, noise and accounting
  std::unique_ptr<ServerOptimizer> opt_;
  uint32_t scaffold_nodes_ = 0;       // SCAFFOLD: N, all nodes (0 = not SCAFFOLD)
  bool unweighted_ = false;           // FedBuff: every (staleness-scaled) update counts once
  std::vector<float> control_;        // SCAFFOLD: the server's control variate c
  std::vector<double> control_sum_;   // the round's control deltas, summed
  size_t size_ = 0;
  WeightedMean mean_;
  std::vector<std::vector<float>> updates_;
  std::vector<double> weights_;
};

}  // namespace

std::vector<std::string> Strategy::ConfigureEvaluate(uint32_t round, const std::vector<std::string>& participants) {
  if (evaluate_every_ == 0 || round % evaluate_every_ != 0) return {};
  return participants;
}

EvaluateSummary Strategy::AggregateEvaluate(uint32_t, size_t asked, const std::vector<EvaluateResult>& results) {
  EvaluateSummary s;
  s.asked = asked;
  s.answered = results.size();
  double loss = 0.0, correct = 0.0;
  for (const auto& r : results) {
    loss += r.loss * static_cast<double>(r.num_samples);
    correct += r.accuracy * static_cast<double>(r.num_samples);
    s.samples += r.num_samples;
  }
  if (s.samples > 0) {
    s.has_figures = true;
    s.loss = loss / static_cast<double>(s.samples);
    s.accuracy = correct / static_cast<double>(s.samples);
  }
  return s;
}

const std::vector<std::string>& StrategyNames() {
  static const std::vector<std::string> names = {"fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi", "scaffold", "fedbuff"};
  return names;
}

Result<std::unique_ptr<Strategy>> MakeStrategy(const StrategyOptions& opt) {
  if (!(opt.fraction > 0.0 && opt.fraction <= 1.0))
    return Status::InvalidArgument("federation.fraction must be in (0, 1]");
  SelectionOptions sel = opt.selection;
  sel.fraction = opt.fraction;
  if (sel.policy != "random" && sel.policy != "deadline" && sel.policy != "channel")
    return Status::InvalidArgument("federation.selection = '" + sel.policy + "' is unknown; allowed: random, deadline, channel");
  ServerOptimizerOptions so = opt.server;
  if (opt.name == "fedavg" || opt.name == "fedprox") so.kind = "none";
  else if (opt.name == "scaffold") so.kind = "none";  // x += server_lr x the mean update  // FedProx's term is the nodes' (fit_ins.proximal_mu)
  else if (opt.name == "fedbuff") so.kind = "none";   // x += server_lr x (1/K) sum of w(staleness) x update
  else if (opt.name == "fedavgm") so.kind = "momentum";
  else if (opt.name == "fedadagrad") so.kind = "adagrad";
  else if (opt.name == "fedadam") so.kind = "adam";
  else if (opt.name == "fedyogi") so.kind = "yogi";
  else
    return Status::InvalidArgument("federation.strategy = '" + opt.name +
                                   "' is unknown; allowed: fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi, scaffold, fedbuff");
  EDGEBED_RETURN_IF_ERROR(ValidateRobust(opt.robust));
  if (opt.dp.on() && opt.robust.rule != "mean")
    return Status::InvalidArgument("federation.dp_clip_norm > 0 (DP-FedAvg) takes aggregation = mean, not " + opt.robust.rule);
  if (opt.name == "fedbuff" && opt.dp.on())
    return Status::InvalidArgument("federation.strategy = fedbuff takes no DP (dp_clip_norm = 0)");
  if (opt.name == "scaffold" && (opt.robust.rule != "mean" || opt.dp.on() || opt.num_nodes == 0))
    return Status::InvalidArgument("federation.strategy = scaffold takes aggregation = mean and no DP (dp_clip_norm = 0)");
  std::optional<DpAggregator> dp;
  if (opt.dp.on()) {
    EDGEBED_ASSIGN_OR_RETURN(DpAggregator a, DpAggregator::Create(opt.dp));
    dp = std::move(a);
  }
  EDGEBED_ASSIGN_OR_RETURN(auto server_opt, ServerOptimizer::Create(so));
  return std::unique_ptr<Strategy>(new UpdateStrategy(opt.name, sel, opt.robust, std::move(dp), std::move(server_opt),
                                                      opt.name == "scaffold" ? opt.num_nodes : 0,
                                                      opt.name == "scaffold" || opt.name == "fedbuff", opt.evaluate_every));
}

}  // namespace edgebed
