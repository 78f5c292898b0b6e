#include "node/width_controller.h"

#include "splitnets/split_training.h"

namespace edgebed {

WidthController::WidthController(std::vector<WidthOption> options, double deadline_ms, double margin,
                                 double initial_kbps)
    : options_(std::move(options)), server_ms_(options_.size()), budget_ms_(deadline_ms * (1.0 - margin)),
      kbps_(initial_kbps) {}

double WidthController::PredictMs(size_t i) const {
  const auto& o = options_[i];
  return o.node_ms + static_cast<double>(o.bytes) * 8.0 / kbps_ + o.server_ms;  // kbit/s = bit/ms
}

size_t WidthController::Choose() const {
  for (size_t i = options_.size(); i-- > 0;)
    if (PredictMs(i) <= budget_ms_) return i;
  return 0;
}

void WidthController::ObserveTransfer(uint64_t bytes, double air_ms) {
  if (air_ms > 0.0 && bytes > 0) kbps_ = static_cast<double>(bytes) * 8.0 / air_ms;
}

void WidthController::ObserveServerMs(size_t i, double ms) {
  if (i >= options_.size() || !(ms >= 0.0)) return;
  auto& last = server_ms_[i];
  last.push_back(ms);
  if (last.size() > 5) last.erase(last.begin());
  options_[i].server_ms = Median(last);
}

}  // namespace edgebed
