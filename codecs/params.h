// A model's state as the wire and the aggregators see it: named float32 tensors stored back to back
// in one flat array, so aggregation is one loop and no part below splitnets/ needs libtorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const;
  std::string ShapeString() const;  // "[32, 1, 3, 3]"
  bool operator==(const TensorSpec& o) const { return name == o.name && shape == o.shape; }
};

struct ParamSet {
  std::vector<TensorSpec> specs;
  std::vector<float> flat;  // concatenation of all tensors in spec order, row-major

  static ParamSet Zeros(std::vector<TensorSpec> specs);
  int64_t numel() const { return static_cast<int64_t>(flat.size()); }
  size_t bytes() const { return flat.size() * sizeof(float); }
  // True when both have the same tensor names and shapes in the same order.
  bool SameLayout(const ParamSet& o) const { return specs == o.specs; }
};

// Checks `got` against the expected layout: same tensors, shapes, and every value finite.
// The message names the first tensor at fault and what was expected.
Status CheckLayout(const std::vector<TensorSpec>& expected, const ParamSet& got);
Status CheckFinite(const ParamSet& p);
// True when none of the n values is NaN or infinite (one vectorised pass over the exponent bits).
bool AllFinite(const float* data, size_t n);

}  // namespace edgebed
