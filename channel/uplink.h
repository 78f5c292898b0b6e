// The uplink between nodes and the server: every update the server aggregates has crossed one.
// Two kinds (ns-3 style: non-virtual public calls, private virtual Do* ones):
// - orthogonal links carry each node's update on its own (ideal, digital packets);
// - superposing links (analog OTA) carry all of a round's updates at once and give the server only
//   what the channel summed.
// Every random draw of node k in round r comes from a stream seeded by (seed, k, r): the same run
// sees the same channel whatever order updates arrive in.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "channel/channel_config.h"
#include "codecs/status.h"

namespace edgebed {

struct NodeLinkStats {
  uint64_t payload_bits = 0;     // bits of update handed to the link
  uint64_t coded_bits = 0;       // after CRC and FEC (digital)
  double channel_uses = 0.0;     // complex symbols this node put on air
  double airtime_s = 0.0;        // this node's time on air
  double tx_energy_j = 0.0;      // transmit energy
  uint64_t packets = 0, lost_packets = 0, retransmissions = 0;  // digital
  bool active = true;            // analog OTA: above the truncation threshold
  double snr_db = 0.0;           // mean receive SNR of this node's link (after path loss)
};

// What carrying updates cost in one round.
struct LinkAccounting {
  uint64_t payload_bits = 0;
  double channel_uses = 0.0;   // complex symbols on air (superposed symbols count once)
  double airtime_s = 0.0;      // time the uplink was busy (orthogonal links: summed over nodes)
  double tx_energy_j = 0.0;    // summed over nodes
  uint64_t control_bits = 0;   // side information over the error-free control channel (OTA)
  uint64_t lost_packets = 0, retransmissions = 0;
  std::map<uint32_t, NodeLinkStats> per_node;
  void AddNode(uint32_t node, const NodeLinkStats& s);
};

struct OtaInput {
  uint32_t node = 0;
  const std::vector<float>* values = nullptr;
};

struct OtaOutput {
  std::vector<float> mean;  // the server's estimate of the mean of the active nodes' updates
  uint32_t active = 0;      // K_a: nodes above the threshold
  double rho0 = 0.0;        // common receive power of each active node [W]
  double noise_power = 0.0; // N0 [W]
  double scale = 1.0;       // sigma of the common normalisation
};

// Digital OTA: one node's VQ indices (one per block) and the shared codebook they map to.
struct UraInput {
  uint32_t node = 0;
  const std::vector<uint32_t>* indices = nullptr;
};
struct UraCode {
  const std::vector<float>* codebook = nullptr;  // n x d, unit-norm rows
  uint32_t n = 0, d = 0;
  uint32_t index_bits = 0;                       // log2 of the VQ codebook size: payload bits per block
};
struct UraOutput {
  std::vector<float> y;                // blocks x d: y_s = x_s^T C + w_s (normalised by the common gain)
  double noise_var = 0.0;              // per real entry, averaged over blocks
  std::vector<uint32_t> active_nodes;  // nodes above the truncation threshold (they transmitted)
  double rho0 = 0.0, noise_power = 0.0;
};

class Uplink {
 public:
  virtual ~Uplink() = default;
  virtual std::string Describe() const = 0;
  virtual bool superposes() const { return false; }

  // Orthogonal links: carries node `node`'s update in `round`. Values the receiver lost are set to
  // NaN (erasures); `payload_bytes` is the encoded size where the link counts bytes, not values.
  Status Carry(uint32_t node, uint32_t round, std::vector<float>* values, uint64_t payload_bytes,
               LinkAccounting* acc) {
    return DoCarry(node, round, values, payload_bytes, acc);
  }
  // Expected channel power gain of `node` in `round`, for channel-aware selection: 1 where no channel
  // is modelled, the large-scale path gain, or (analog OTA: one draw per round) path gain x |h|^2.
  double ExpectedGain(uint32_t node, uint32_t round) const { return DoExpectedGain(node, round); }
  // Superposing links: all of the round's updates (same length) at once.
  Result<OtaOutput> Superpose(uint32_t round, const std::vector<OtaInput>& inputs, LinkAccounting* acc) {
    return DoSuperpose(round, inputs, acc);
  }
  // Digital OTA (superposing links that carry codewords): all of the round's index vectors at once.
  Result<UraOutput> SuperposeCodewords(uint32_t round, const std::vector<UraInput>& inputs, const UraCode& code,
                                       LinkAccounting* acc) {
    return DoSuperposeCodewords(round, inputs, code, acc);
  }
  virtual bool carries_codewords() const { return false; }

 private:
  virtual Status DoCarry(uint32_t node, uint32_t round, std::vector<float>* values, uint64_t payload_bytes,
                         LinkAccounting* acc);
  virtual Result<OtaOutput> DoSuperpose(uint32_t round, const std::vector<OtaInput>& inputs, LinkAccounting* acc);
  virtual Result<UraOutput> DoSuperposeCodewords(uint32_t, const std::vector<UraInput>&, const UraCode&,
                                                 LinkAccounting*) {
    return Status::InvalidArgument(Describe() + " does not carry codewords (channel.uplink = digital_ota does)");
  }
  virtual double DoExpectedGain(uint32_t, uint32_t) const { return 1.0; }
};

// Error-free, instantaneous link: counts bits, changes nothing.
class IdealUplink final : public Uplink {
 public:
  std::string Describe() const override { return "ideal (error-free)"; }

 private:
  Status DoCarry(uint32_t node, uint32_t round, std::vector<float>* values, uint64_t payload_bytes,
                 LinkAccounting* acc) override;
};

// Builds the uplink `cfg.uplink` names for `num_nodes` nodes of a run seeded `seed`.
Result<std::unique_ptr<Uplink>> MakeUplink(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);

// NodeLinkStats <-> the wire's LinkReport (what a channel process tells the server it did).
namespace wire { class LinkReport; }
void ToLinkReport(uint32_t node, const NodeLinkStats& s, wire::LinkReport* out);
NodeLinkStats FromLinkReport(const wire::LinkReport& r);

// Node distances drawn from the seed, uniform in [distance_min_m, distance_max_m].
std::vector<double> NodeDistances(const ChannelConfig& cfg, uint32_t num_nodes, uint64_t seed);

}  // namespace edgebed
