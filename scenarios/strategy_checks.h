// The [federation] strategy fields checked against each other and the uplink at load: robust rules
// and DP-FedAvg need each node's update (not an over-the-air sum), and a rule needs enough updates
// per round for its byzantine count. Errors name the fields and the numbers.
#pragma once
#include "codecs/status.h"
#include "scenarios/scenario.h"

namespace edgebed {

[[nodiscard]] Status CheckStrategyFields(const Scenario& s);

}  // namespace edgebed
