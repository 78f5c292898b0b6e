#include "server/strategy_options.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "server/dp_accountant.h"

namespace edgebed {

Result<StrategyOptions> ScenarioStrategy(const Scenario& sc) {
  StrategyOptions so;
  so.name = sc.strategy;
  so.server.lr = sc.server_lr;
  so.server.momentum = sc.server_momentum;
  so.server.beta1 = sc.beta1;
  so.server.beta2 = sc.beta2;
  so.server.tau = sc.tau;
  so.robust.rule = sc.aggregation;
  so.robust.byzantine = sc.byzantine;
  so.robust.trim_fraction = sc.trim_fraction;
  so.robust.multi_krum_keep = sc.multi_krum_keep;
  so.robust.clip_norm = sc.clip_norm;
  so.dp.clip_norm = sc.dp_clip_norm;
  so.dp.noise_multiplier = sc.dp_noise_multiplier;
  so.dp.delta = sc.dp_delta;
  so.dp.sampling_rate = sc.fraction;
  so.dp.expected_nodes = std::max<uint32_t>(1, static_cast<uint32_t>(std::ceil(sc.fraction * sc.nodes)));
  so.dp.seed = sc.seed;
  so.dp.adaptive = sc.dp_adaptive;
  so.dp.target_quantile = sc.dp_target_quantile;
  so.dp.clip_lr = sc.dp_clip_lr;
  so.dp.count_noise_std = sc.dp_count_noise_std;
  if (so.dp.on() && sc.dp_target_epsilon > 0) {
    EDGEBED_ASSIGN_OR_RETURN(so.dp.noise_multiplier, NoiseForEpsilon(sc.fraction, sc.rounds, sc.dp_delta, sc.dp_target_epsilon));
    spdlog::info("DP-FedAvg: noise multiplier {:.4f} ends {} rounds at epsilon {:.3f} (delta {:g}, sampling rate {:g})",
                 so.dp.noise_multiplier, sc.rounds, sc.dp_target_epsilon, sc.dp_delta, sc.fraction);
  }
  so.num_nodes = sc.nodes;
  so.evaluate_every = sc.evaluate_every;
  so.fraction = sc.fraction;
  so.selection.policy = sc.selection;
  so.selection.over_commit = sc.over_commit;
  so.selection.virtual_deadline_s = sc.virtual_deadline_s;
  return so;
}

}  // namespace edgebed
