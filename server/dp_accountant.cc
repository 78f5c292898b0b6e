#include "server/dp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace edgebed {

double SampledGaussianRdp(double q, double z, int alpha) {
  if (q <= 0.0) return 0.0;
  const double a = alpha;
  if (q >= 1.0) return a / (2.0 * z * z);
  // log A_a by log-sum-exp over k = 0..alpha.
  std::vector<double> terms;
  for (int k = 0; k <= alpha; ++k) {
    const double log_binom = std::lgamma(a + 1) - std::lgamma(k + 1.0) - std::lgamma(a - k + 1);
    terms.push_back(log_binom + (a - k) * std::log1p(-q) + k * std::log(q) + (static_cast<double>(k) * k - k) / (2.0 * z * z));
  }
  const double mx = *std::max_element(terms.begin(), terms.end());
  double s = 0.0;
  for (double t : terms) s += std::exp(t - mx);
  return (mx + std::log(s)) / (a - 1.0);
}

double DpEpsilon(double q, double z, uint64_t rounds, double delta) {
  if (z <= 0.0) return std::numeric_limits<double>::infinity();
  double best = std::numeric_limits<double>::infinity();
  for (int alpha = 2; alpha <= 256; ++alpha)
    best = std::min(best, static_cast<double>(rounds) * SampledGaussianRdp(q, z, alpha) + std::log(1.0 / delta) / (alpha - 1.0));
  return best;
}

Result<double> NoiseForEpsilon(double q, uint64_t rounds, double delta, double target_epsilon) {
  double lo = 1e-3, hi = 1000.0;
  if (DpEpsilon(q, hi, rounds, delta) > target_epsilon)
    return Status::InvalidArgument("federation.dp_target_epsilon = " + std::to_string(target_epsilon) +
                                   " cannot be reached in " + std::to_string(rounds) + " rounds even with a noise multiplier of 1000");
  while (hi - lo > 1e-3 * hi) {
    const double mid = 0.5 * (lo + hi);
    (DpEpsilon(q, mid, rounds, delta) > target_epsilon ? lo : hi) = mid;
  }
  return hi;
}

}  // namespace edgebed
