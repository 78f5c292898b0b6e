#include "scenarios/strategy_checks.h"

#include <cmath>
#include <string>

namespace edgebed {

Status CheckStrategyFields(const Scenario& s) {
  if (s.strategy == "fedbuff") {  // asynchronous: each update is applied on its own, rounds are server steps
    if (s.channel.uplink == "analog_ota" || s.channel.uplink == "digital_ota")
      return Status::InvalidArgument("federation.strategy = fedbuff applies each update as it arrives; channel.uplink = " +
                                     s.channel.uplink + " superposes a synchronous round's updates");
    if (s.channel.relay_nodes > 0)
      return Status::InvalidArgument("federation.strategy = fedbuff takes channel.relay_nodes = 0 (updates cross the "
                                     "server's own uplink model)");
    if (s.dp_clip_norm > 0.0)
      return Status::InvalidArgument("federation.strategy = fedbuff with federation.dp_clip_norm > 0: the DP accountant "
                                     "counts sampled synchronous rounds; allowed: dp_clip_norm = 0");
    if (s.selection != "random" || s.over_commit > 0.0 || s.virtual_deadline_s > 0.0 || s.evaluate_every > 0)
      return Status::InvalidArgument("federation.strategy = fedbuff keeps ceil(fraction x nodes) nodes training, drawn at "
                                     "random: it takes federation.selection = random, over_commit = 0, evaluate_every = 0 "
                                     "and server.virtual_deadline_s = 0");
  }
  if (s.strategy == "scaffold") {  // control variates travel beside each node's update
    if (s.channel.uplink == "analog_ota" || s.channel.uplink == "digital_ota")
      return Status::InvalidArgument("federation.strategy = scaffold sends each node's control delta beside its update; channel.uplink = " +
                                     s.channel.uplink + " delivers only the sum");
    if (s.aggregation != "mean" || s.dp_clip_norm > 0.0)
      return Status::InvalidArgument("federation.strategy = scaffold takes federation.aggregation = mean and dp_clip_norm = 0");
  }
  if (s.dp_clip_norm > 0.0) {  // central DP clips each node's update
    if (s.channel.uplink == "analog_ota" || s.channel.uplink == "digital_ota")
      return Status::InvalidArgument("federation.dp_clip_norm > 0 (DP-FedAvg) clips each node's update; channel.uplink = " +
                                     s.channel.uplink + " delivers only their sum");
    if (s.aggregation != "mean")
      return Status::InvalidArgument("federation.dp_clip_norm > 0 (DP-FedAvg) takes federation.aggregation = mean, not " + s.aggregation);
  }
  if (s.aggregation != "mean") {  // robust rules need each node's update, and enough of them per round
    if (s.channel.uplink == "analog_ota" || s.channel.uplink == "digital_ota")
      return Status::InvalidArgument("federation.aggregation = " + s.aggregation + " needs each node's update; channel.uplink = " +
                                     s.channel.uplink + " delivers only their sum (use mean)");
    if (s.aggregation == "norm_bound" && !(s.clip_norm > 0.0))
      return Status::InvalidArgument("federation.clip_norm must be > 0 for aggregation = norm_bound");
    const uint32_t f = s.byzantine;
    const uint32_t need = s.aggregation == "bulyan" ? 4 * f + 3 : (s.aggregation == "krum" || s.aggregation == "multi_krum") ? 2 * f + 3 : 1;
    const bool steps = s.strategy == "fedbuff";  // a step aggregates buffer_size updates
    const auto per_round = steps ? s.buffer_size : static_cast<uint32_t>(std::ceil(s.fraction * s.nodes));
    if (per_round < need)
      return Status::InvalidArgument("federation.aggregation = " + s.aggregation + " with byzantine = " + std::to_string(f) +
                                     " needs at least " + std::to_string(need) + " updates a round; " +
                                     (steps ? "federation.buffer_size is " : "federation.fraction x nodes gives ") +
                                     std::to_string(per_round));
  }
  return Status::Ok();
}

}  // namespace edgebed
