#include "codecs/activation_codec.h"

#include <cmath>

namespace edgebed {

void QuantiseUnit8(const std::vector<float>& values, std::vector<uint8_t>* codes) {
  codes->resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i] > 0.0f ? (values[i] < 1.0f ? values[i] : 1.0f) : 0.0f;  // NaN -> 0
    (*codes)[i] = static_cast<uint8_t>(std::lround(v * 255.0f));
  }
}

void DequantiseUnit8(const uint8_t* codes, size_t n, std::vector<float>* values) {
  values->resize(n);
  for (size_t i = 0; i < n; ++i) (*values)[i] = static_cast<float>(codes[i]) * (1.0f / 255.0f);
}

}  // namespace edgebed
