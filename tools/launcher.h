// `edgebed run`: one federation on this machine as real processes, a server and N nodes talking
// ZeroMQ over TCP loopback, with progress on the terminal and outputs in the scenario's folder.
#pragma once
#include <string>

#include "scenarios/scenario.h"

namespace edgebed {

// Runs the scenario with `exe` (this binary) as server and nodes. Returns the exit code: 0 for a
// complete run, non-zero for one that failed or was stopped (summary.json says which and why).
// `resume`: continue the run in sc.output_dir from its checkpoint (fresh node processes rejoin).
int RunFederation(const Scenario& sc, const std::string& exe, bool resume = false);

// Draws <dir>/metrics.png (accuracy and loss per round) from <dir>/metrics.csv with gnuplot.
// `title` heads the plot. Returns false (after logging why) when gnuplot is missing or fails.
bool PlotMetrics(const std::string& dir, const std::string& title);

}  // namespace edgebed
