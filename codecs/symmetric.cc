#include "codecs/symmetric.h"

#include <algorithm>
#include <cmath>

namespace edgebed {

Result<SymmetricFn> ParseSymmetricFn(const std::string& name) {
  if (name == "mean") return SymmetricFn::kMean;
  if (name == "trimmed_mean") return SymmetricFn::kTrimmedMean;
  if (name == "median") return SymmetricFn::kMedian;
  if (name == "majority") return SymmetricFn::kMajority;
  return Status::InvalidArgument("ota.aggregate = '" + name + "' is unknown; allowed: mean, trimmed_mean, median, majority");
}

const char* SymmetricFnName(SymmetricFn f) {
  switch (f) {
    case SymmetricFn::kMean: return "mean";
    case SymmetricFn::kTrimmedMean: return "trimmed_mean";
    case SymmetricFn::kMedian: return "median";
    case SymmetricFn::kMajority: return "majority";
  }
  return "?";
}

float SymmetricOfMultiset(std::vector<std::pair<float, int32_t>>& vm, const SymmetricOptions& opt) {
  int64_t K = 0;
  double sum = 0.0, abs_sum = 0.0;
  int64_t pos = 0, neg = 0;
  for (const auto& [v, m] : vm) {
    K += m;
    sum += static_cast<double>(v) * m;
    abs_sum += std::fabs(static_cast<double>(v)) * m;
    if (v > 0) pos += m;
    if (v < 0) neg += m;
  }
  if (K == 0) return 0.0f;
  switch (opt.fn) {
    case SymmetricFn::kMean: return static_cast<float>(sum / static_cast<double>(K));
    case SymmetricFn::kMajority: {
      const double mag = abs_sum / static_cast<double>(K);
      return static_cast<float>(pos > neg ? mag : (neg > pos ? -mag : 0.0));
    }
    default: break;
  }
  std::sort(vm.begin(), vm.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Sum of the values at sorted ranks [lo, hi) of the multiset.
  auto rank_sum = [&](int64_t lo, int64_t hi) {
    double s = 0.0;
    int64_t at = 0;
    for (const auto& [v, m] : vm) {
      const int64_t a = std::max(at, lo), b = std::min(at + m, hi);
      if (b > a) s += static_cast<double>(v) * static_cast<double>(b - a);
      at += m;
    }
    return s;
  };
  if (opt.fn == SymmetricFn::kMedian) {
    if (K % 2 == 1) return static_cast<float>(rank_sum(K / 2, K / 2 + 1));
    return static_cast<float>(rank_sum(K / 2 - 1, K / 2 + 1) / 2.0);
  }
  const int64_t cut = static_cast<int64_t>(std::floor(opt.trim * static_cast<double>(K)));
  return static_cast<float>(rank_sum(cut, K - cut) / static_cast<double>(K - 2 * cut));
}

Status AggregateCounts(const VqCodebook& q, const int32_t* counts, size_t count, const SymmetricOptions& opt, float* out) {
  if (opt.fn == SymmetricFn::kTrimmedMean && !(opt.trim >= 0.0 && opt.trim < 0.5))
    return Status::InvalidArgument("ota.trim = " + std::to_string(opt.trim) + ", allowed [0, 0.5)");
  const uint32_t L = q.block_length, n = q.size;
  const size_t S = NumBlocks(count, L);
  std::vector<std::pair<uint32_t, int32_t>> nz;
  std::vector<std::pair<float, int32_t>> vm;
  for (size_t s = 0; s < S; ++s) {
    const int32_t* x = counts + s * n;
    nz.clear();
    for (uint32_t i = 0; i < n; ++i) {
      if (x[i] < 0) return Status::InvalidArgument("a count vector holds a negative count");
      if (x[i] > 0) nz.push_back({i, x[i]});
    }
    const size_t lo = s * L, hi = std::min(count, lo + L);
    for (size_t j = lo; j < hi; ++j) {
      vm.clear();
      for (const auto& [i, m] : nz) vm.push_back({q.centroid(i)[j - lo], m});
      out[j] = SymmetricOfMultiset(vm, opt);
    }
  }
  return Status::Ok();
}

void MeanFromSoftCounts(const VqCodebook& q, const float* soft, uint32_t k_hat, size_t count, float* out) {
  const uint32_t L = q.block_length, n = q.size;
  const size_t S = NumBlocks(count, L);
  const double inv = 1.0 / std::max<uint32_t>(1, k_hat);
  std::vector<double> acc(L);
  for (size_t s = 0; s < S; ++s) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (uint32_t i = 0; i < n; ++i) {
      const float x = soft[s * n + i];
      if (x <= 0.0f) continue;
      const float* c = q.centroid(i);
      for (uint32_t j = 0; j < L; ++j) acc[j] += static_cast<double>(x) * c[j];
    }
    const size_t lo = s * L, hi = std::min(count, lo + L);
    for (size_t j = lo; j < hi; ++j) out[j] = static_cast<float>(acc[j - lo] * inv);
  }
}

}  // namespace edgebed
