#include "server/robust_aggregate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edgebed {
namespace {

using Updates = std::vector<std::vector<float>>;

float Clean(float v) { return std::isnan(v) ? 0.0f : v; }

double SquaredDistance(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(Clean(a[i])) - Clean(b[i]);
    s += d * d;
  }
  return s;
}

// Krum scores of the updates `set` (indices into u): the sum of each one's n - f - 2 smallest
// squared distances to the others.
std::vector<double> KrumScores(const Updates& u, const std::vector<size_t>& set, uint32_t f) {
  const size_t n = set.size();
  std::vector<std::vector<double>> d(n, std::vector<double>(n, 0.0));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) d[i][j] = d[j][i] = SquaredDistance(u[set[i]], u[set[j]]);
  const size_t k = n > static_cast<size_t>(f) + 2 ? n - f - 2 : 0;
  std::vector<double> score(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> row;
    for (size_t j = 0; j < n; ++j)
      if (j != i) row.push_back(d[i][j]);
    std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(k), row.end());
    score[i] = std::accumulate(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(k), 0.0);
  }
  return score;
}

// The positions of `score` in ascending order (ties by position).
std::vector<size_t> Ranked(const std::vector<double>& score) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  return order;
}

std::vector<float> WeightedMeanOf(const Updates& u, const std::vector<double>& w, const std::vector<size_t>& set) {
  std::vector<double> acc(u[set[0]].size(), 0.0);
  double total = 0.0;
  for (size_t i : set) {
    for (size_t c = 0; c < acc.size(); ++c) acc[c] += w[i] * Clean(u[i][c]);
    total += w[i];
  }
  std::vector<float> out(acc.size());
  for (size_t c = 0; c < acc.size(); ++c) out[c] = static_cast<float>(acc[c] / total);
  return out;
}

// Per coordinate over `set`: the mean of the values left after cutting `trim` from each end.
std::vector<float> TrimmedMean(const Updates& u, const std::vector<size_t>& set, size_t trim) {
  const size_t dim = u[set[0]].size();
  std::vector<float> out(dim), col(set.size());
  for (size_t c = 0; c < dim; ++c) {
    for (size_t i = 0; i < set.size(); ++i) col[i] = Clean(u[set[i]][c]);
    std::sort(col.begin(), col.end());
    double s = 0.0;
    for (size_t i = trim; i < col.size() - trim; ++i) s += col[i];
    out[c] = static_cast<float>(s / static_cast<double>(col.size() - 2 * trim));
  }
  return out;
}

Status Need(const RobustOptions& opt, size_t n, size_t need) {
  if (n >= need) return Status::Ok();
  return Status::Unavailable(opt.rule + " with federation.byzantine = " + std::to_string(opt.byzantine) + " needs at least " +
                             std::to_string(need) + " updates, the round has " + std::to_string(n));
}

}  // namespace

double ClipToNorm(std::vector<float>* x, double clip_norm) {
  double norm = 0.0;
  for (float& v : *x) {
    v = Clean(v);
    norm += static_cast<double>(v) * v;
  }
  norm = std::sqrt(norm);
  if (norm > clip_norm)
    for (float& v : *x) v = static_cast<float>(v * (clip_norm / norm));
  return norm;
}

Status ValidateRobust(const RobustOptions& opt) {
  static const std::vector<std::string> rules = {"mean", "median", "trimmed_mean", "krum", "multi_krum", "bulyan", "norm_bound"};
  if (std::find(rules.begin(), rules.end(), opt.rule) == rules.end())
    return Status::InvalidArgument("federation.aggregation = '" + opt.rule +
                                   "' is unknown; allowed: mean, median, trimmed_mean, krum, multi_krum, bulyan, norm_bound");
  if (!(opt.trim_fraction >= 0.0 && opt.trim_fraction < 0.5))
    return Status::InvalidArgument("federation.trim_fraction must be in [0, 0.5)");
  if (opt.rule == "norm_bound" && !(opt.clip_norm > 0.0 && std::isfinite(opt.clip_norm)))
    return Status::InvalidArgument("federation.clip_norm must be > 0 for aggregation = norm_bound");
  return Status::Ok();
}

Result<std::vector<float>> RobustAggregate(const Updates& u, const std::vector<double>& w, const RobustOptions& opt,
                                           std::vector<size_t>* chosen) {
  EDGEBED_RETURN_IF_ERROR(ValidateRobust(opt));
  const size_t n = u.size();
  if (n == 0) return Status::Unavailable("no update to aggregate");
  if (w.size() != n) return Status::InvalidArgument("one weight per update is needed");
  for (const auto& x : u)
    if (x.size() != u[0].size()) return Status::InvalidArgument("updates of different lengths");
  const uint32_t f = opt.byzantine;
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  std::vector<size_t> keep = all;
  std::vector<float> out;
  if (opt.rule == "mean") {
    out = WeightedMeanOf(u, w, all);
  } else if (opt.rule == "median") {
    out = TrimmedMean(u, all, (n - 1) / 2);  // odd n: the middle value; even n: the mean of the two middle ones
  } else if (opt.rule == "trimmed_mean") {
    out = TrimmedMean(u, all, static_cast<size_t>(std::floor(opt.trim_fraction * static_cast<double>(n))));
  } else if (opt.rule == "krum" || opt.rule == "multi_krum") {
    EDGEBED_RETURN_IF_ERROR(Need(opt, n, 2 * static_cast<size_t>(f) + 3));
    const auto order = Ranked(KrumScores(u, all, f));
    const size_t m = opt.rule == "krum" ? 1 : (opt.multi_krum_keep > 0 ? std::min<size_t>(opt.multi_krum_keep, n) : n - f);
    keep.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(m));
    out = WeightedMeanOf(u, w, keep);
  } else if (opt.rule == "bulyan") {
    EDGEBED_RETURN_IF_ERROR(Need(opt, n, 4 * static_cast<size_t>(f) + 3));
    const size_t theta = n - 2 * f;
    std::vector<size_t> left = all;
    keep.clear();
    while (keep.size() < theta) {  // Krum on what is left, one pick at a time
      // The set shrinks below Krum's 2f + 3 towards the end: f is lowered to what the set allows.
      const uint32_t fl = left.size() >= 3 ? std::min<uint32_t>(f, static_cast<uint32_t>(left.size() - 3)) : 0;
      const auto scores = KrumScores(u, left, fl);
      const size_t best = Ranked(scores)[0];
      keep.push_back(left[best]);
      left.erase(left.begin() + static_cast<std::ptrdiff_t>(best));
    }
    const size_t beta = theta - 2 * f;  // per coordinate, the beta values closest to the median
    out.resize(u[0].size());
    std::vector<float> col(theta);
    for (size_t c = 0; c < out.size(); ++c) {
      for (size_t i = 0; i < theta; ++i) col[i] = Clean(u[keep[i]][c]);
      std::sort(col.begin(), col.end());
      const double med = theta % 2 ? col[theta / 2] : 0.5 * (col[theta / 2 - 1] + col[theta / 2]);
      std::stable_sort(col.begin(), col.end(), [&](float a, float b) { return std::fabs(a - med) < std::fabs(b - med); });
      double s = 0.0;
      for (size_t i = 0; i < beta; ++i) s += col[i];
      out[c] = static_cast<float>(s / static_cast<double>(beta));
    }
  } else {  // norm_bound
    Updates clipped = u;
    for (auto& x : clipped) ClipToNorm(&x, opt.clip_norm);
    out = WeightedMeanOf(clipped, w, all);
  }
  if (chosen) *chosen = keep;
  return out;
}

}  // namespace edgebed
