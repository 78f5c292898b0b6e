// DP-FedAvg's aggregation (McMahan et al. 2018), with fixed or adaptive clipping (Andrew et al. 2021):
// each node's update is scaled to norm <= C and counts once; the round's delta is (the sum + N(0,
// (sigma C)^2) per coordinate) / (q N). With fixed clipping sigma = z. With adaptive clipping C
// follows the target quantile gamma of the update norms: b = (the updates with norm <= C + N(0,
// sigma_b^2)) / (q N), C <- C exp(-clip_lr (b - gamma)), and the updates' noise is
// sigma = (z^-2 - (2 sigma_b)^-2)^(-1/2), so that both releases together cost what z alone would.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codecs/status.h"
#include "server/aggregate.h"

namespace edgebed {

// DP-FedAvg with fixed clipping (McMahan et al. 2018) or adaptive clipping (Andrew et al. 2021).
struct DpOptions {
  double noise_multiplier = 0.0;  // z >= 0: the mechanism's noise multiplier (what the accountant uses)
  double clip_norm = 0.0;         // C > 0 turns DP-FedAvg on (adaptive: the initial C)
  double delta = 1e-5;            // the delta epsilon is reported at
  double sampling_rate = 1.0;     // q: the share of nodes selected per round
  uint32_t expected_nodes = 1;    // q N: the denominator
  uint64_t seed = 0;              // the noise's stream
  bool adaptive = false;          // adaptive clipping
  double target_quantile = 0.5;   // gamma in (0, 1)
  double clip_lr = 0.2;           // eta_C > 0
  double count_noise_std = 0.0;   // sigma_b; 0 = q N / 20 (the paper's choice)
  bool on() const { return clip_norm > 0.0; }
};

class DpAggregator {
 public:
  // Errors name the field (federation.dp_*) and the range, e.g. a noise multiplier not below twice
  // the clipping count's noise.
  [[nodiscard]] static Result<DpAggregator> Create(const DpOptions& opt);

  void BeginRound(size_t model_size);
  void Add(const std::vector<float>& update);  // NaN (an erased value) counts as 0
  // The round's delta; the clipping norm moves after it when adaptive.
  [[nodiscard]] Result<std::vector<float>> Finish(uint32_t round);
  // dp_epsilon (after the rounds aggregated so far), dp_delta, dp_noise_multiplier, dp_clip_norm.
  std::vector<std::pair<std::string, double>> Figures() const;
  std::string Save() const;  // rounds and the clipping norm, for the checkpoint
  [[nodiscard]] Status Load(const std::string& bytes);
  double clip_norm() const { return clip_; }
  double update_noise_multiplier() const { return sigma_; }

 private:
  explicit DpAggregator(const DpOptions& opt);
  DpOptions opt_;
  double clip_ = 0.0;       // C now
  double sigma_ = 0.0;      // the updates' noise multiplier
  double count_std_ = 0.0;  // sigma_b
  WeightedMean sum_;
  uint64_t unclipped_ = 0;  // updates of norm <= C this round
  uint64_t rounds_ = 0;     // rounds aggregated (the accountant's T)
};

}  // namespace edgebed
