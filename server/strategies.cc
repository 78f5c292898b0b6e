// The float-update strategies (FedProx is FedAvg here; its proximal term is the nodes', sent in
// fit_ins.proximal_mu): how the round's updates combine into one (the weighted mean of FedAvg
// (McMahan et al. 2017), or a Byzantine-robust rule, robust_aggregate.h) and how the server moves the
// model by it (plain, FedAvgM, FedAdagrad, FedAdam, FedYogi: server_optimizer.h). The mean streams
// (one accumulator the size of the model); the robust rules keep the round's updates.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "server/aggregate.h"
#include "server/dp_accountant.h"
#include "server/robust_aggregate.h"
#include "server/server_optimizer.h"
#include "server/strategy.h"

namespace edgebed {
namespace {

class UpdateStrategy final : public Strategy {
 public:
  UpdateStrategy(std::string name, SelectionOptions selection, RobustOptions robust, DpOptions dp,
                 std::unique_ptr<ServerOptimizer> opt)
      : name_(std::move(name)), selection_(std::move(selection)), robust_(std::move(robust)), dp_(dp), opt_(std::move(opt)) {}
  std::string name() const override { return name_; }

  Selection ConfigureFit(uint32_t, const std::vector<Candidate>& available, Rng& rng) override {
    return SelectNodes(selection_, available, rng);
  }

  void BeginRound(uint32_t, const ParamSet& global) override {
    size_ = global.flat.size();
    mean_.Reset(streaming() ? size_ : 0);
    updates_.clear();
    weights_.clear();
  }

  Status Accumulate(const FitResult& r) override {
    if (r.update.flat.size() != size_)
      return Status::InvalidArgument("update of " + r.node_id + " has " + std::to_string(r.update.flat.size()) +
                                     " values, the model has " + std::to_string(size_));
    if (r.num_samples == 0) return Status::InvalidArgument("update of " + r.node_id + " has num_samples = 0");
    if (dp_.on()) {  // DP-FedAvg: every node counts once, clipped to clip_norm (an erased value counts as 0)
      std::vector<float> u = r.update.flat;
      double norm = 0.0;
      for (float& v : u) norm += static_cast<double>(v = std::isnan(v) ? 0.0f : v) * v;
      norm = std::sqrt(norm);
      if (norm > dp_.clip_norm)
        for (float& v : u) v = static_cast<float>(v * (dp_.clip_norm / norm));
      mean_.Add(u.data(), u.size(), 1.0);
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
    if (dp_.on()) {  // (sum of clipped updates + N(0, (z C)^2)) / (q N)
      if (mean_.count() == 0) return Status::Unavailable("round " + std::to_string(round) + ": no update to aggregate");
      mean_.Mean(delta.data());
      Rng rng = MakeRng(dp_.seed, "dp-noise", round);
      std::normal_distribution<double> noise(0.0, dp_.noise_multiplier * dp_.clip_norm);
      const double count = static_cast<double>(mean_.count()), n = dp_.expected_nodes;
      for (float& v : delta) v = static_cast<float>((v * count + (dp_.noise_multiplier > 0 ? noise(rng) : 0.0)) / n);
      ++dp_rounds_;
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
    if (!dp_.on()) return {};
    return {{"dp_epsilon", DpEpsilon(dp_.sampling_rate, dp_.noise_multiplier, dp_rounds_, dp_.delta)},
            {"dp_delta", dp_.delta},
            {"dp_noise_multiplier", dp_.noise_multiplier}};
  }

  // The server optimiser's moments, and with DP the rounds the accountant has counted.
  std::string SaveState() const override {
    std::string out = opt_->Save();
    if (dp_.on()) out = "EBDP1" + std::string(reinterpret_cast<const char*>(&dp_rounds_), 8) + out;
    return out;
  }
  Status LoadState(const std::string& state) override {
    std::string rest = state;
    if (dp_.on()) {
      if (rest.size() < 13 || rest.compare(0, 5, "EBDP1") != 0)
        return Status::InvalidArgument("federation.strategy = " + name_ + ": the checkpoint holds no DP round count");
      std::memcpy(&dp_rounds_, rest.data() + 5, 8);
      rest = rest.substr(13);
    }
    Status st = opt_->Load(rest);
    return st.ok() ? st : Status::InvalidArgument("federation.strategy = " + name_ + ": " + st.message());
  }

 private:
  bool streaming() const { return robust_.rule == "mean" || dp_.on(); }
  std::string name_;
  SelectionOptions selection_;
  RobustOptions robust_;
  DpOptions dp_;
  uint64_t dp_rounds_ = 0;  // rounds that added noise (the accountant's T)
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
  if (!(opt.dp.noise_multiplier >= 0.0) || !(opt.dp.delta > 0.0 && opt.dp.delta < 1.0) || opt.dp.expected_nodes == 0)
    return Status::InvalidArgument("federation.dp_noise_multiplier must be >= 0 and federation.dp_delta in (0, 1)");
  EDGEBED_ASSIGN_OR_RETURN(auto server_opt, ServerOptimizer::Create(so));
  return std::unique_ptr<Strategy>(new UpdateStrategy(opt.name, sel, opt.robust, opt.dp, std::move(server_opt)));
}

}  // namespace edgebed
