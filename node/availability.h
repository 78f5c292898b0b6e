// Whether a simulated device is online in a round.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

// Whether a device is online in a round: always; an on/off Markov chain per node (seeded); or a trace
// file of "node,round,online" lines (0/1, the state holds from that round on; unlisted = online).
struct AvailabilitySpec {
  std::string kind = "always";  // always | markov | trace
  double p_off = 0.1;           // markov: P(online -> offline) per round
  double p_on = 0.5;            // markov: P(offline -> online) per round
  std::string trace_file;
};

class Availability {
 public:
  static Result<Availability> Create(const AvailabilitySpec& spec, uint32_t num_nodes, uint64_t seed);
  // Rounds must be asked in increasing order per node (the chain is walked forward).
  bool Online(uint32_t node, uint32_t round);

 private:
  AvailabilitySpec spec_;
  uint64_t seed_ = 0;
  std::vector<uint8_t> state_;
  std::vector<uint32_t> at_round_;
  std::map<uint32_t, std::vector<std::pair<uint32_t, bool>>> trace_;  // node -> (round, online), sorted
};

}  // namespace edgebed
