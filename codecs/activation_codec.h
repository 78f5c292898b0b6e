// The tensors of a split network on the wire.
// - The bottleneck: values in [0, 1] (the encoder ends in a sigmoid) quantised to 8 bits, one byte
//   each, q = round(255 x). What the bits carry is all the receiver gets: a flipped bit on the air
//   changes the decoded value.
// - The gradients that answer it (split.gradient_bits = 8): signed 8 bits per value with one float
//   scale per sample, q = round(127 g / max|g|) over the sample's values, g ~= q x scale.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

// Values outside [0, 1] are clamped (NaN goes to 0).
void QuantiseUnit8(const std::vector<float>& values, std::vector<uint8_t>* codes);
void DequantiseUnit8(const uint8_t* codes, size_t n, std::vector<float>* values);

// `rows` samples of `per_row` values each -> rows x per_row codes (int8 as bytes) and rows scales
// (max|g| / 127; 0 for a row of zeros). Non-finite values are sent as 0.
void QuantiseSigned8(const float* values, size_t rows, size_t per_row, std::string* codes, std::vector<float>* scales);
// The inverse, checked: `field` names the message in the error when the sizes do not match rows x
// per_row or a scale is negative or not finite.
[[nodiscard]] Status DequantiseSigned8(const std::string& codes, const float* scales, size_t num_scales, size_t rows,
                                       size_t per_row, const std::string& field, std::vector<float>* values);

}  // namespace edgebed
