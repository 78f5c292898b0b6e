// FedAvg (McMahan et al. 2017): the mean of the updates weighted by each node's sample count.
#include <algorithm>
#include <cmath>

#include "server/aggregate.h"
#include "server/strategy.h"

namespace edgebed {
namespace {

class FedAvg final : public Strategy {
 public:
  explicit FedAvg(SelectionOptions selection) : selection_(std::move(selection)) {}
  std::string name() const override { return "fedavg"; }

  Selection ConfigureFit(uint32_t, const std::vector<Candidate>& available, Rng& rng) override {
    return SelectNodes(selection_, available, rng);
  }

  void BeginRound(uint32_t, const ParamSet& global) override { mean_.Reset(global.flat.size()); }

  Status Accumulate(const FitResult& r) override {
    if (r.update.flat.size() != mean_.size())
      return Status::InvalidArgument("update of " + r.node_id + " has " + std::to_string(r.update.flat.size()) +
                                     " values, the model has " + std::to_string(mean_.size()));
    if (r.num_samples == 0) return Status::InvalidArgument("update of " + r.node_id + " has num_samples = 0");
    mean_.Add(r.update.flat.data(), r.update.flat.size(), static_cast<double>(r.num_samples));
    return Status::Ok();
  }

  Result<ParamSet> AggregateFit(uint32_t round, const ParamSet& global, const std::vector<FitFailure>&) override {
    if (mean_.count() == 0) return Status::Unavailable("round " + std::to_string(round) + ": no update to aggregate");
    ParamSet next = global;
    std::vector<float> delta(global.flat.size());
    mean_.Mean(delta.data());
    for (size_t i = 0; i < delta.size(); ++i) next.flat[i] += delta[i];
    return next;
  }

 private:
  SelectionOptions selection_;
  WeightedMean mean_;
};

}  // namespace

Result<std::unique_ptr<Strategy>> MakeStrategy(const StrategyOptions& opt) {
  if (!(opt.fraction > 0.0 && opt.fraction <= 1.0))
    return Status::InvalidArgument("federation.fraction must be in (0, 1]");
  SelectionOptions sel = opt.selection;
  sel.fraction = opt.fraction;
  if (sel.policy != "random" && sel.policy != "deadline" && sel.policy != "channel")
    return Status::InvalidArgument("federation.selection = '" + sel.policy + "' is unknown; allowed: random, deadline, channel");
  if (opt.name == "fedavg") return std::unique_ptr<Strategy>(new FedAvg(sel));
  return Status::InvalidArgument("federation.strategy = '" + opt.name + "' is unknown; allowed: fedavg");
}

}  // namespace edgebed
