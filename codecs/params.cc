#include "codecs/params.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

namespace edgebed {

int64_t TensorSpec::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

std::string TensorSpec::ShapeString() const {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

ParamSet ParamSet::Zeros(std::vector<TensorSpec> specs) {
  ParamSet p;
  int64_t n = 0;
  for (const auto& s : specs) n += s.numel();
  p.specs = std::move(specs);
  p.flat.assign(static_cast<size_t>(n), 0.0f);
  return p;
}

Status CheckLayout(const std::vector<TensorSpec>& expected, const ParamSet& got) {
  if (got.specs.size() != expected.size())
    return Status::InvalidArgument("update has " + std::to_string(got.specs.size()) +
                                   " tensors, the model has " + std::to_string(expected.size()));
  int64_t total = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& g = got.specs[i];
    if (g.name != e.name)
      return Status::InvalidArgument("tensor " + std::to_string(i) + " is named '" + g.name +
                                     "', expected '" + e.name + "'");
    if (g.shape != e.shape)
      return Status::InvalidArgument("tensor '" + e.name + "' has shape " + g.ShapeString() +
                                     ", expected " + e.ShapeString());
    total += e.numel();
  }
  if (total != got.numel())
    return Status::InvalidArgument("update holds " + std::to_string(got.numel()) +
                                   " values, its shapes need " + std::to_string(total));
  return Status::Ok();
}

bool AllFinite(const float* data, size_t n) {
  // A float is non-finite exactly when its exponent bits are all ones; the OR-reduction vectorises.
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

Status CheckFinite(const ParamSet& p) {
  // Fast path first; only when it finds something does the slow loop look for where.
  if (AllFinite(p.flat.data(), p.flat.size())) return Status::Ok();
  size_t offset = 0;
  for (const auto& s : p.specs) {
    const size_t n = static_cast<size_t>(s.numel());
    for (size_t j = 0; j < n; ++j) {
      if (!std::isfinite(p.flat[offset + j]))
        return Status::InvalidArgument("tensor '" + s.name + "' holds a non-finite value (" +
                                       std::to_string(p.flat[offset + j]) + ") at element " +
                                       std::to_string(j) + "; updates must be finite");
    }
    offset += n;
  }
  return Status::Ok();
}

}  // namespace edgebed
