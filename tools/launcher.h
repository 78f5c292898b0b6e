// `edgebed run`: one federation on this machine as real processes, a server and N nodes talking
// ZeroMQ over TCP loopback, with progress on the terminal and outputs in the scenario's folder.
#pragma once
#include <string>

#include "scenarios/scenario.h"

namespace edgebed {

// Runs the scenario with `exe` (this binary) as server and nodes. Returns the exit code.
int RunFederation(const Scenario& sc, const std::string& exe);

// Draws <dir>/metrics.png (accuracy and loss per round) from <dir>/metrics.csv with gnuplot.
// `title` heads the plot. Returns false (after logging why) when gnuplot is missing or fails.
bool PlotMetrics(const std::string& dir, const std::string& title);

}  // namespace edgebed
