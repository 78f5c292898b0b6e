// The bottleneck of a split network on the wire: values in [0, 1] (the encoder ends in a sigmoid)
// quantised to 8 bits, one byte each, q = round(255 x). What the bits carry is all the receiver gets:
// a flipped bit on the air changes the decoded value.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgebed {

// Values outside [0, 1] are clamped (NaN goes to 0).
void QuantiseUnit8(const std::vector<float>& values, std::vector<uint8_t>* codes);
void DequantiseUnit8(const uint8_t* codes, size_t n, std::vector<float>* values);

}  // namespace edgebed
