#include "node/availability.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include "codecs/rng.h"

namespace edgebed {

Result<Availability> Availability::Create(const AvailabilitySpec& spec, uint32_t num_nodes, uint64_t seed) {
  Availability a;
  a.spec_ = spec;
  a.seed_ = seed;
  if (spec.kind == "always") return a;
  if (spec.kind == "markov") {
    if (!(spec.p_off >= 0 && spec.p_off <= 1) || !(spec.p_on > 0 && spec.p_on <= 1))
      return Status::InvalidArgument("population.p_off must be in [0, 1] and population.p_on in (0, 1]");
    a.state_.resize(num_nodes);
    a.at_round_.assign(num_nodes, 0);
    const double stationary_on = spec.p_on / (spec.p_on + spec.p_off);
    for (uint32_t k = 0; k < num_nodes; ++k) {
      Rng r = MakeRng(seed, "availability-start", k);
      a.state_[k] = std::uniform_real_distribution<double>(0.0, 1.0)(r) < stationary_on;
    }
    return a;
  }
  if (spec.kind == "trace") {
    std::ifstream in(spec.trace_file);
    if (!in) return Status::NotFound("population.trace_file = '" + spec.trace_file + "' cannot be opened");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == '#' || line.rfind("node", 0) == 0) continue;
      std::stringstream ls(line);
      long node = -1, round = -1, online = -1;
      char c1 = 0, c2 = 0;
      ls >> node >> c1 >> round >> c2 >> online;
      if (!ls || c1 != ',' || c2 != ',' || node < 0 || node >= static_cast<long>(num_nodes) || round < 1 ||
          (online != 0 && online != 1))
        return Status::InvalidArgument("population.trace_file " + spec.trace_file + ":" + std::to_string(n) +
                                       ": expected 'node,round,online' with node in [0, " +
                                       std::to_string(num_nodes - 1) + "], round >= 1, online 0 or 1");
      a.trace_[static_cast<uint32_t>(node)].push_back({static_cast<uint32_t>(round), online == 1});
    }
    for (auto& [k, v] : a.trace_) std::stable_sort(v.begin(), v.end(), [](auto& x, auto& y) { return x.first < y.first; });
    return a;
  }
  return Status::InvalidArgument("population.availability = '" + spec.kind + "' is unknown; allowed: always, markov, trace");
}

bool Availability::Online(uint32_t node, uint32_t round) {
  if (spec_.kind == "always") return true;
  if (spec_.kind == "trace") {
    auto it = trace_.find(node);
    if (it == trace_.end()) return true;
    bool online = true;
    for (const auto& [r, on] : it->second) {
      if (r > round) break;
      online = on;
    }
    return online;
  }
  if (node >= state_.size()) return true;
  while (at_round_[node] < round) {  // walk the chain one round at a time, each step its own draw
    ++at_round_[node];
    Rng r = MakeRng(seed_, "availability", node, at_round_[node]);
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(r);
    state_[node] = state_[node] ? (u >= spec_.p_off) : (u < spec_.p_on);
  }
  return state_[node] != 0;
}

}  // namespace edgebed
