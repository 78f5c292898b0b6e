// What split inference leaves behind: inference.csv (every request), the passes' figures (deadline
// met, accuracy, mean width and latency; where the fixed width missed, how often the adaptive
// controller met the deadline) and inference.png (link rate, width and latency over time).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct InferRow {
  uint32_t pass = 0, request = 0, samples = 0, correct = 0;
  std::string controller;
  double t_s = 0, kbps = 0, width = 0, node_ms = 0, air_ms = 0, server_ms = 0, latency_ms = 0;
  uint64_t bytes = 0, bit_errors = 0;
  bool met = false;
};

// Writes <dir>/inference.csv and inference.png; returns the passes' figures. A failed write of the
// CSV is an error naming it; a missing plot is only logged.
[[nodiscard]] Result<nlohmann::json> WriteInferenceReport(const std::string& dir, const std::vector<InferRow>& rows,
                                                          double deadline_ms, double fixed_width);

}  // namespace edgebed
