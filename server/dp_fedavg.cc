#include "server/dp_fedavg.h"

#include <cmath>
#include <cstring>
#include <random>

#include "codecs/rng.h"
#include "server/dp_accountant.h"
#include "server/robust_aggregate.h"

namespace edgebed {

DpAggregator::DpAggregator(const DpOptions& opt) : opt_(opt), clip_(opt.clip_norm), sigma_(opt.noise_multiplier) {}

Result<DpAggregator> DpAggregator::Create(const DpOptions& opt) {
  if (!(opt.clip_norm > 0.0 && std::isfinite(opt.clip_norm))) return Status::InvalidArgument("federation.dp_clip_norm must be > 0");
  if (!(opt.noise_multiplier >= 0.0)) return Status::InvalidArgument("federation.dp_noise_multiplier must be >= 0");
  if (!(opt.delta > 0.0 && opt.delta < 1.0)) return Status::InvalidArgument("federation.dp_delta must be in (0, 1)");
  if (opt.expected_nodes == 0) return Status::InvalidArgument("DP-FedAvg needs at least one node per round");
  DpAggregator a(opt);
  if (!opt.adaptive) return a;
  if (!(opt.target_quantile > 0.0 && opt.target_quantile < 1.0))
    return Status::InvalidArgument("federation.dp_target_quantile must be in (0, 1)");
  if (!(opt.clip_lr > 0.0)) return Status::InvalidArgument("federation.dp_clip_lr must be > 0");
  a.count_std_ = opt.count_noise_std > 0.0 ? opt.count_noise_std : opt.expected_nodes / 20.0;
  if (opt.noise_multiplier > 0.0) {
    const double rest = 1.0 / (opt.noise_multiplier * opt.noise_multiplier) - 1.0 / (4.0 * a.count_std_ * a.count_std_);
    if (!(rest > 0.0))
      return Status::InvalidArgument("federation.dp_noise_multiplier = " + std::to_string(opt.noise_multiplier) +
                                     " is too large for adaptive clipping with a count noise of " + std::to_string(a.count_std_) +
                                     " (federation.dp_count_noise_std): it must stay below 2 x that (" +
                                     std::to_string(2 * a.count_std_) + "), or the count noise must grow");
    a.sigma_ = 1.0 / std::sqrt(rest);
  } else {
    a.count_std_ = 0.0;  // no noise at all: the count is exact
  }
  return a;
}

void DpAggregator::BeginRound(size_t model_size) {
  sum_.Reset(model_size);
  unclipped_ = 0;
}

void DpAggregator::Add(const std::vector<float>& update) {
  std::vector<float> u = update;
  if (ClipToNorm(&u, clip_) <= clip_) ++unclipped_;
  sum_.Add(u.data(), u.size(), 1.0);
}

Result<std::vector<float>> DpAggregator::Finish(uint32_t round) {
  if (sum_.count() == 0) return Status::Unavailable("round " + std::to_string(round) + ": no update to aggregate");
  std::vector<float> delta(sum_.size());
  sum_.Mean(delta.data());
  Rng rng = MakeRng(opt_.seed, "dp-noise", round);
  std::normal_distribution<double> noise(0.0, sigma_ * clip_);
  const double count = static_cast<double>(sum_.count()), n = opt_.expected_nodes;
  for (float& v : delta) v = static_cast<float>((v * count + (sigma_ > 0 ? noise(rng) : 0.0)) / n);
  if (opt_.adaptive) {
    Rng crng = MakeRng(opt_.seed, "dp-clip-count", round);
    std::normal_distribution<double> count_noise(0.0, count_std_ > 0 ? count_std_ : 1.0);
    const double b = (static_cast<double>(unclipped_) + (count_std_ > 0 ? count_noise(crng) : 0.0)) / n;
    clip_ *= std::exp(-opt_.clip_lr * (b - opt_.target_quantile));
  }
  ++rounds_;
  return delta;
}

std::vector<std::pair<std::string, double>> DpAggregator::Figures() const {
  return {{"dp_epsilon", DpEpsilon(opt_.sampling_rate, opt_.noise_multiplier, rounds_, opt_.delta)},
          {"dp_delta", opt_.delta},
          {"dp_noise_multiplier", opt_.noise_multiplier},
          {"dp_clip_norm", clip_}};
}

std::string DpAggregator::Save() const {
  std::string out = "EBDP2";
  out.append(reinterpret_cast<const char*>(&rounds_), 8);
  out.append(reinterpret_cast<const char*>(&clip_), 8);
  return out;
}

Status DpAggregator::Load(const std::string& bytes) {
  if (bytes.size() != 21 || bytes.compare(0, 5, "EBDP2") != 0)
    return Status::InvalidArgument("the checkpoint holds no DP-FedAvg state (rounds, clipping norm)");
  std::memcpy(&rounds_, bytes.data() + 5, 8);
  std::memcpy(&clip_, bytes.data() + 13, 8);
  if (!(clip_ > 0.0 && std::isfinite(clip_))) return Status::Corruption("the checkpoint's DP clipping norm is not a positive number");
  return Status::Ok();
}

}  // namespace edgebed
