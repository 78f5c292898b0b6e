// Everything a scenario says about the physical layer ([channel] in a scenario file). Units are in
// the names; defaults are the values shown. Validate() names the field and its allowed range.
#pragma once
#include <cstdint>
#include <string>

#include "codecs/status.h"

namespace edgebed {

struct ChannelConfig {
  std::string uplink = "ideal";      // ideal | digital | analog_ota | digital_ota
  double snr_db = 10.0;              // mean receive SNR at reference_distance_m, full power [dB]
  // OTA only: "node" = snr_db is each node's receive SNR; "sum" = snr_db is the SNR of the received
  // superposed signal (signal power of the sum over noise power, the AMP-DA-Net paper's definition).
  std::string snr_reference = "node";
  std::string fading = "rayleigh";   // none | rayleigh | rician (block fading, unit mean power)
  double rician_k_db = 6.0;          // Rician K-factor [dB]
  double path_loss_exponent = 3.0;   // large-scale loss ~ (d / reference_distance_m)^exponent
  double reference_distance_m = 10.0;
  double distance_min_m = 10.0;      // node distances drawn uniformly in [min, max] from the seed
  double distance_max_m = 10.0;
  double carrier_offset = 0.0;       // residual carrier frequency offset [radians/sample]
  double symbol_rate_hz = 1e6;       // channel uses per second (airtime = uses / rate)
  double tx_power_w = 0.1;           // each node's maximum transmit power [W]

  // Orthogonal digital uplink.
  std::string modulation = "qpsk";   // bpsk | qpsk | qam16 | qam64
  std::string fec = "hamming74";     // none | rep3 | rep5 | hamming74 | hamming84 | hamming128 |
                                     // golay2412 | secded2216 | secded3932 | secded7264
  uint32_t packet_bytes = 1024;      // payload bytes per packet, a multiple of 4 (whole float32s)
  uint32_t max_retransmissions = 0;  // 0: a lost packet's values are erased; else resend up to N times

  // Deployment: nodes 0..relay_nodes-1 reach the server through a standalone channel process
  // (`edgebed channel`), which applies this channel to their updates; the others go direct.
  uint32_t relay_nodes = 0;

  // Analog over-the-air aggregation (AirComp, truncated channel inversion).
  double gain_threshold = 0.2;       // a node transmits only if |h|^2 >= this [linear]

  Status Validate() const;
  double snr_linear() const;
};

}  // namespace edgebed
