// Chooses a slimmable encoder's width per inference request: the widest width whose predicted
// latency (encoder on the node + bottleneck bits over the link rate + decoder on the server) fits in
// (1 - margin) x the deadline; the narrowest when none does. The link rate is what the last transfer
// measured (its bits over its airtime); encoder times are the node's own measurements, decoder times
// the median of the last five the server reported for that width (one slow answer on a busy machine
// does not narrow the next requests). Torch-free: it only sees numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgebed {

struct WidthOption {
  double width = 1.0;
  uint64_t bytes = 0;      // bottleneck bytes of one request at this width
  double node_ms = 0.0;    // measured encoder time of one request
  double server_ms = 0.0;  // decoder time (updated from the server's reports)
};

class WidthController {
 public:
  // `options` ascending in width.
  WidthController(std::vector<WidthOption> options, double deadline_ms, double margin, double initial_kbps);
  // Index into options() of the width for the next request.
  size_t Choose() const;
  double PredictMs(size_t i) const;
  // A transfer of `bytes` took `air_ms` on the link: the new rate estimate.
  void ObserveTransfer(uint64_t bytes, double air_ms);
  void ObserveServerMs(size_t i, double ms);
  double estimate_kbps() const { return kbps_; }
  const std::vector<WidthOption>& options() const { return options_; }

 private:
  std::vector<WidthOption> options_;
  std::vector<std::vector<double>> server_ms_;  // per option: the last reports, oldest first
  double budget_ms_;
  double kbps_;
};

}  // namespace edgebed
