// Digital over-the-air aggregation with a shared (URA) codebook (MD-AirComp, arXiv 2405.15969;
// AMP-DA-Net, arXiv 2512.19777). Each active node sends, for every block of its VQ-quantised update,
// the codeword C[i] of the block's index i (unit norm over d real = d/2 complex channel uses); all
// nodes transmit at once with their fading pre-inverted (OtaPowerControl: truncation, common receive
// power rho0), so the server receives, per block s and after normalising by the common gain,
//   y_s = x_s^T C + w_s,  x_s = how many active nodes sent each codeword,
// with w_s ~ N(0, noise_var I_d): noise_var = N0 / (rho0 d) for channel.snr_reference = "node"
// (N0 = P_max / SNR), or ||x_s^T C||^2 / (d SNR) per block for "sum" (the paper's definition).
#pragma once
#include <cstdint>
#include <vector>

#include "channel/analog_ota.h"
#include "channel/uplink.h"

namespace edgebed {

class DigitalOtaUplink final : public Uplink {
 public:
  DigitalOtaUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);
  std::string Describe() const override;
  bool superposes() const override { return true; }
  bool carries_codewords() const override { return true; }

 private:
  Result<UraOutput> DoSuperposeCodewords(uint32_t round, const std::vector<UraInput>& inputs, const UraCode& code,
                                         LinkAccounting* acc) override;
  double DoExpectedGain(uint32_t node, uint32_t round) const override { return power_.ExpectedGain(node, round); }
  ChannelConfig cfg_;
  uint64_t seed_;
  OtaPowerControl power_;
};

}  // namespace edgebed
