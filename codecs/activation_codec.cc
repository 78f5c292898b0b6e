#include "codecs/activation_codec.h"

#include <algorithm>
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

void QuantiseSigned8(const float* values, size_t rows, size_t per_row, std::string* codes, std::vector<float>* scales) {
  codes->resize(rows * per_row);
  scales->resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    const float* v = values + r * per_row;
    float top = 0.0f;
    for (size_t i = 0; i < per_row; ++i)
      if (std::isfinite(v[i])) top = std::max(top, std::fabs(v[i]));
    const float scale = top / 127.0f, inv = top > 0.0f ? 127.0f / top : 0.0f;
    (*scales)[r] = scale;
    char* out = codes->data() + r * per_row;
    for (size_t i = 0; i < per_row; ++i) {
      const long q = std::isfinite(v[i]) ? std::lround(v[i] * inv) : 0;  // |q| <= 127 by the scale
      out[i] = static_cast<char>(static_cast<int8_t>(q));
    }
  }
}

Status DequantiseSigned8(const std::string& codes, const float* scales, size_t num_scales, size_t rows, size_t per_row,
                         const std::string& field, std::vector<float>* values) {
  if (num_scales != rows)
    return Status::InvalidArgument(field + ": " + std::to_string(num_scales) + " scales for " + std::to_string(rows) +
                                   " samples; one per sample is expected");
  if (codes.size() != rows * per_row)
    return Status::InvalidArgument(field + ": " + std::to_string(codes.size()) + " codes; " + std::to_string(rows) +
                                   " samples x " + std::to_string(per_row) + " values are expected");
  values->resize(rows * per_row);
  for (size_t r = 0; r < rows; ++r) {
    if (!(scales[r] >= 0.0f) || !std::isfinite(scales[r]))
      return Status::InvalidArgument(field + ": scale " + std::to_string(r) + " is " + std::to_string(scales[r]) +
                                     "; a finite value >= 0 is expected");
    for (size_t i = 0; i < per_row; ++i)
      (*values)[r * per_row + i] = static_cast<float>(static_cast<int8_t>(codes[r * per_row + i])) * scales[r];
  }
  return Status::Ok();
}

}  // namespace edgebed
