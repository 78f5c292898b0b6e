// The float-update strategies (FedProx is FedAvg here; its proximal term is the nodes', sent in
// fit_ins.proximal_mu): how the round's updates combine into one (the weighted mean of FedAvg
// (McMahan et al. 2017), or a Byzantine-robust rule, robust_aggregate.h) and how the server moves the
// model by it (plain, FedAvgM, FedAdagrad, FedAdam, FedYogi: server_optimizer.h). The mean streams
// (one accumulator the size of the model); the robust rules keep the round's updates.
#include <algorithm>
#include <cmath>
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
                 std::unique_ptr<ServerOptimizer> opt)
      : name_(std::move(name)), selection_(std::move(selection)), robust_(std::move(robust)), dp_(std::move(dp)),
        opt_(std::move(opt)) {}
  std::string name() const override { return name_; }

  Selection ConfigureFit(uint32_t, const std::vector<Candidate>& available, Rng& rng) override {
    return SelectNodes(selection_, available, rng);
  }

  void BeginRound(uint32_t, const ParamSet& global) override {
    size_ = global.flat.size();
    mean_.Reset(streaming() && !dp_.has_value() ? size_ : 0);
    if (dp_) dp_->BeginRound(size_);
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
    } else if (streaming()) {
      mean_.Add(r.update.flat.data(), r.update.flat.size(), static_cast<double>(r.num_samples));
    } else {
      updates_.push_back(r.update.flat);
      weights_.push_back(static_cast<double>(r.num_samples));
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
    return next;
  }

  std::vector<std::pair<std::string, double>> RoundFigures() const override {
    return dp_ ? dp_->Figures() : std::vector<std::pair<std::string, double>>{};
  }

  // With DP its rounds and clipping norm, then the server optimiser's moments.
  std::string SaveState() const override { return (dp_ ? dp_->Save() : std::string()) + opt_->Save(); }
  Status LoadState(const std::string& state) override {
    std::string rest = state;
    if (dp_) {  // its 21 bytes come first
      Status st = dp_->Load(rest.substr(0, 21));
      if (!st.ok()) return Status::InvalidArgument("federation.strategy = " + name_ + ": " + st.message());
      rest = rest.substr(std::min<size_t>(21, rest.size()));
    }
    Status st = opt_->Load(rest);
    return st.ok() ? st : Status::InvalidArgument("federation.strategy = " + name_ + ": " + st.message());
  }

 private:
  bool streaming() const { return robust_.rule == "mean" || dp_.has_value(); }
  std::string name_;
  SelectionOptions selection_;
  RobustOptions robust_;
  std::optional<DpAggregator> dp_;  // DP-FedAvg's clipping, noise and accounting
  std::unique_ptr<ServerOptimizer> opt_;
  size_t size_ = 0;
  WeightedMean mean_;
  std::vector<std::vector<float>> updates_;
  std::vector<double> weights_;
};

}  // namespace

const std::vector<std::string>& StrategyNames() {
  static const std::vector<std::string> names = {"fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi"};
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
  if (opt.name == "fedavg" || opt.name == "fedprox") so.kind = "none";  // FedProx's term is the nodes' (fit_ins.proximal_mu)
  else if (opt.name == "fedavgm") so.kind = "momentum";
  else if (opt.name == "fedadagrad") so.kind = "adagrad";
  else if (opt.name == "fedadam") so.kind = "adam";
  else if (opt.name == "fedyogi") so.kind = "yogi";
  else
    return Status::InvalidArgument("federation.strategy = '" + opt.name +
                                   "' is unknown; allowed: fedavg, fedprox, fedavgm, fedadagrad, fedadam, fedyogi");
  EDGEBED_RETURN_IF_ERROR(ValidateRobust(opt.robust));
  if (opt.dp.on() && opt.robust.rule != "mean")
    return Status::InvalidArgument("federation.dp_clip_norm > 0 (DP-FedAvg) takes aggregation = mean, not " + opt.robust.rule);
  std::optional<DpAggregator> dp;
  if (opt.dp.on()) {
    EDGEBED_ASSIGN_OR_RETURN(DpAggregator a, DpAggregator::Create(opt.dp));
    dp = std::move(a);
  }
  EDGEBED_ASSIGN_OR_RETURN(auto server_opt, ServerOptimizer::Create(so));
  return std::unique_ptr<Strategy>(new UpdateStrategy(opt.name, sel, opt.robust, std::move(dp), std::move(server_opt)));
}

}  // namespace edgebed
