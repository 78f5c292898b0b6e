// A byte stream over the scenario's uplink, for what is not a model update: the 8-bit bottleneck of
// a split network. channel.uplink = ideal delivers the bytes untouched; digital cuts them into
// packets (CRC-32 + FEC, liquid packetizer), modulates, fades and adds noise exactly as the digital
// uplink does, and retransmits a packet whose CRC fails up to channel.max_retransmissions times. A
// packet still failing is delivered as decoded, bit errors and all (a split network's decoder takes
// what arrives; erasing a batch's activations would stall training).
// Airtime: the PHY's channel uses over channel.symbol_rate_hz, or, when a bandwidth trace is given,
// the payload bits over the trace's rate at the time of sending (a link whose rate varies).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "channel/channel_config.h"
#include "codecs/status.h"

namespace edgebed {

// A link rate over time: from t_s on (until the next point) the link carries kbps.
struct RatePoint {
  double t_s = 0.0;
  double kbps = 1000.0;
};
class BandwidthTrace {
 public:
  // Points must start at t_s = 0, rise in time, and have kbps > 0; errors name split.bandwidth[i].
  static Result<BandwidthTrace> Create(std::vector<RatePoint> points);
  BandwidthTrace() = default;
  bool empty() const { return points_.empty(); }
  double KbpsAt(double t_s) const;
  const std::vector<RatePoint>& points() const { return points_; }

 private:
  std::vector<RatePoint> points_;
};

struct ByteLinkStats {
  uint64_t bytes = 0;          // payload carried
  uint64_t bit_errors = 0;     // payload bits that arrived flipped
  uint64_t packets = 0, failed_packets = 0, retransmissions = 0;
  double airtime_s = 0.0;
  void Add(const ByteLinkStats& o);
};

class PacketLink;

class ByteLink {
 public:
  // channel.uplink must be ideal or digital (errors name the field). Node distances (path loss) are
  // drawn from `seed` as for the update uplink.
  static Result<std::unique_ptr<ByteLink>> Create(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed,
                                                  BandwidthTrace trace = {});
  ~ByteLink();
  std::string Describe() const;
  // Carries node `node`'s bytes; (a, b) name the transfer (e.g. round and step): the channel's draws
  // for it come from (seed, node, a, b), whatever order transfers happen in. `t_s` is the trace's
  // clock (ignored without a trace).
  Status Carry(uint32_t node, uint64_t a, uint64_t b, double t_s, std::vector<uint8_t>* bytes, ByteLinkStats* st);

 private:
  ByteLink() = default;
  ChannelConfig cfg_;
  uint64_t seed_ = 0;
  BandwidthTrace trace_;
  std::vector<double> path_gain_;
  std::unique_ptr<PacketLink> link_;  // digital only
};

}  // namespace edgebed
