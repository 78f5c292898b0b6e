#include "server/aggregate.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace edgebed {

void WeightedMean::Reset(size_t n) {
  acc_.assign(n, 0.0);
  missing_.clear();
  erased_ = 0;
  total_ = 0.0;
  count_ = 0;
}

namespace {
// True when x holds a NaN; an OR-reduction over the exponent/mantissa bits that vectorises.
bool AnyNan(const float* __restrict x, size_t n) {
  uint32_t any = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    any |= static_cast<uint32_t>((bits & 0x7fffffffu) > 0x7f800000u);
  }
  return any != 0;
}
}  // namespace

void WeightedMean::Add(const float* __restrict x, size_t n, double weight) {
  double* __restrict a = acc_.data();
  if (!AnyNan(x, n)) {
    for (size_t i = 0; i < n; ++i) a[i] += weight * static_cast<double>(x[i]);
  } else {  // erased values (NaN) add nothing to their coordinate, nor to its weight
    if (missing_.empty()) missing_.assign(acc_.size(), 0.0);
    for (size_t i = 0; i < n; ++i) {
      if (x[i] != x[i]) {
        missing_[i] += weight;
        ++erased_;
      } else {
        a[i] += weight * static_cast<double>(x[i]);
      }
    }
  }
  total_ += weight;
  ++count_;
}

void WeightedMean::Mean(float* out) const {
  if (total_ <= 0.0) {
    std::fill(out, out + acc_.size(), 0.0f);
    return;
  }
  if (missing_.empty()) {
    const double inv = 1.0 / total_;
    for (size_t i = 0; i < acc_.size(); ++i) out[i] = static_cast<float>(acc_[i] * inv);
    return;
  }
  for (size_t i = 0; i < acc_.size(); ++i) {
    const double w = total_ - missing_[i];
    out[i] = w > 0.0 ? static_cast<float>(acc_[i] / w) : 0.0f;  // erased everywhere: no change
  }
}

}  // namespace edgebed
