#include "server/aggregate.h"

#include <algorithm>

namespace edgebed {

void WeightedMean::Reset(size_t n) {
  acc_.assign(n, 0.0);
  total_ = 0.0;
  count_ = 0;
}

void WeightedMean::Add(const float* __restrict x, size_t n, double weight) {
  double* __restrict a = acc_.data();
  for (size_t i = 0; i < n; ++i) a[i] += weight * static_cast<double>(x[i]);
  total_ += weight;
  ++count_;
}

void WeightedMean::Mean(float* out) const {
  if (total_ <= 0.0) {
    std::fill(out, out + acc_.size(), 0.0f);
    return;
  }
  const double inv = 1.0 / total_;
  for (size_t i = 0; i < acc_.size(); ++i) out[i] = static_cast<float>(acc_[i] * inv);
}

}  // namespace edgebed
