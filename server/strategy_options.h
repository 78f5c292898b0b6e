// The strategy a scenario asks for: [federation] strategy, server optimiser, aggregation rule and
// DP-FedAvg fields mapped onto StrategyOptions (a target epsilon becomes a noise multiplier here).
#pragma once
#include "codecs/status.h"
#include "scenarios/scenario.h"
#include "server/strategy.h"

namespace edgebed {

[[nodiscard]] Result<StrategyOptions> ScenarioStrategy(const Scenario& sc);

}  // namespace edgebed
