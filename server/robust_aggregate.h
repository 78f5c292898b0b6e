// Aggregation rules for float updates that tolerate some Byzantine nodes. Each takes every update of
// the round (erased values, NaN, count as 0: no change) and returns the aggregate:
// - median: coordinate-wise median (Yin et al. 2018);
// - trimmed_mean: per coordinate, drop the `trim` largest and `trim` smallest values, average the rest
//   (Yin et al. 2018);
// - krum: the update whose summed squared distance to its n - f - 2 nearest others is smallest; needs
//   n >= 2f + 3 (Blanchard et al. 2017);
// - multi_krum: the mean of the m updates with the smallest Krum scores (m = n - f by default);
// - bulyan: theta = n - 2f updates chosen by Krum one at a time, then per coordinate the mean of the
//   theta - 2f values closest to their median; needs n >= 4f + 3 (El Mhamdi et al. 2018);
// - norm_bound: each update scaled down to norm at most clip_norm, then the weighted mean
//   (Sun et al. 2019);
// - mean: the weighted mean (FedAvg).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct RobustOptions {
  std::string rule = "mean";  // mean | median | trimmed_mean | krum | multi_krum | bulyan | norm_bound
  uint32_t byzantine = 0;     // f: tolerated Byzantine updates (krum, multi_krum, bulyan)
  double trim_fraction = 0.1; // trimmed_mean: share cut from each side, [0, 0.5)
  uint32_t multi_krum_keep = 0;  // multi_krum: m; 0 = n - f
  double clip_norm = 0.0;     // norm_bound: > 0
};

// Erased values (NaN) of `x` become 0, then `x` is scaled down to norm `clip_norm` if it is longer.
// Returns the norm before scaling. Shared by norm_bound and DP-FedAvg.
double ClipToNorm(std::vector<float>* x, double clip_norm);

// Checks the options alone; errors name the field (federation.aggregation, ...) and the range.
[[nodiscard]] Status ValidateRobust(const RobustOptions& opt);

// `updates` (all of one length) with their weights (sample counts); `chosen` gets the indices of the
// updates the rule kept whole (krum, multi_krum, bulyan) or every index. An error says why the rule
// cannot run on this many updates (e.g. "krum with f = 2 needs at least 7 updates, the round has 5").
[[nodiscard]] Result<std::vector<float>> RobustAggregate(const std::vector<std::vector<float>>& updates,
                                                         const std::vector<double>& weights, const RobustOptions& opt,
                                                         std::vector<size_t>* chosen = nullptr);

}  // namespace edgebed
