// The [split] section of a scenario on its own, for the pieces it configures (the server's split
// service) without the whole Scenario.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "channel/byte_link.h"

namespace edgebed {

// [split.inference]: after training, node 0 serves inference requests under the bandwidth trace,
// choosing the encoder's width per request (node/width_controller.h).
struct SplitInferenceConfig {
  uint32_t requests = 0;             // 0 = no inference phase
  double interval_ms = 100.0;        // one request every interval on the trace's clock
  uint32_t samples_per_request = 1;  // test images per request
  double deadline_ms = 40.0;         // node encoder + air + server decoder
  std::string controller = "adaptive";  // adaptive | fixed
  double fixed_width = 1.0;          // controller = fixed (and the comparison pass)
  double margin = 0.1;               // adaptive: plan for (1 - margin) x deadline
  double initial_kbps = 1000.0;      // adaptive: the rate estimate before the first transfer
  bool compare_fixed = true;         // also run the trace at fixed_width, for comparison
  // Virtual compute time: > 0 puts the encoder's (node) or decoder's (server) time for a request at
  // its FLOPs over this rate, so that deadlines do not depend on the machine's load; 0 = measured.
  double node_gflops = 0.0;
  double server_gflops = 0.0;
};

// [split]: split learning (model.name = "slimsplit"): nodes run the slimmable encoder, the server
// the decoder; the bottleneck crosses channel.uplink (ideal or digital) at 8 bits.
struct SplitConfig {
  std::vector<double> widths = {0.25, 0.5, 0.75, 1.0};
  uint32_t bottleneck_channels = 8;  // at width 1.0
  uint32_t sandwich_random = 1;      // sandwich rule: widest + narrowest + this many random widths
  double train_width = 0.0;          // > 0: train this width alone (no sandwich)
  bool distill = true;               // in-place distillation of the narrower widths
  std::string heads = "average";     // average (SplitFed: encoders averaged each round) | separate
  uint32_t gradient_bits = 8;        // the gradients on the downlink: 8 (a scale per sample) | 32 (float)
  // The server's decoder step takes the queued batches of up to batch_nodes nodes at once (0 = all
  // nodes; 1 = one node's batch per step). It waits up to batch_wait_ms after the first batch came
  // for every node still training to send one.
  uint32_t batch_nodes = 0;
  double batch_wait_ms = 50.0;
  // libtorch threads of the decoder's training steps (its evaluation uses server.threads): while the
  // nodes train they keep every core busy, and a second decoder thread mostly spun.
  uint32_t decoder_threads = 1;
  std::vector<RatePoint> bandwidth;  // [[split.bandwidth]]: the link's rate over time; empty = the PHY's
  SplitInferenceConfig inference;
};

}  // namespace edgebed
