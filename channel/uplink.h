// The uplink between a node and the server: every update the server aggregates has crossed one.
// Swappable (ns-3 style: non-virtual Carry() calls private DoCarry()). Version 1 has the ideal
// error-free link; the Liquid-DSP links (fading, noise, bit errors, OTA superposition) plug in here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

// What carrying updates cost, summed over a round; goes into metrics.jsonl.
struct LinkAccounting {
  uint64_t payload_bits = 0;  // bits handed to the link
  double channel_uses = 0.0;  // complex symbols on air (0 for the ideal link: not modelled)
  double airtime_s = 0.0;     // time on air (0 for the ideal link)
  double tx_energy_j = 0.0;   // transmit energy summed over nodes (0 for the ideal link)
  void Add(const LinkAccounting& o);
};

class Uplink {
 public:
  virtual ~Uplink() = default;
  // Carries one node's update of `values` (may alter them the way the channel would) whose encoded
  // size is `payload_bytes`; adds the cost to `acc`. A Status that is not Ok means the update is lost.
  Status Carry(uint32_t node_index, std::vector<float>* values, uint64_t payload_bytes, LinkAccounting* acc) {
    return DoCarry(node_index, values, payload_bytes, acc);
  }
  virtual std::string Describe() const = 0;

 private:
  virtual Status DoCarry(uint32_t node_index, std::vector<float>* values, uint64_t payload_bytes,
                         LinkAccounting* acc) = 0;
};

// Error-free, instantaneous link: counts bits, changes nothing.
class IdealUplink final : public Uplink {
 public:
  std::string Describe() const override { return "ideal (error-free)"; }

 private:
  Status DoCarry(uint32_t, std::vector<float>*, uint64_t payload_bytes, LinkAccounting* acc) override;
};

// Builds the uplink a scenario names ("ideal"); errors name the field channel.uplink.
Result<std::unique_ptr<Uplink>> MakeUplink(const std::string& kind);

}  // namespace edgebed
