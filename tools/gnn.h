// GNN tools: the in-process reference run (gnn.mode = "full"), `edgebed gnn graph` (a graph's
// figures, partition edge cuts, edge-list export) and `edgebed gnn compare` (full, GNNPipe and graph
// parallelism on the same graph and model, for each depth: accuracy, epochs to converge, traffic
// measured and analytic, epoch time).
#pragma once
#include <string>
#include <vector>

#include "scenarios/scenario.h"

namespace edgebed {

// Trains sc.gnn in this process on the whole graph; writes metrics.csv/jsonl/png and summary.json.
int RunGnnReference(const Scenario& sc);

int RunGnnGraphInfo(const Scenario& sc, const std::string& write_prefix);

// Every layout at every depth, shard count and virtual link rate (gnn/virtual_link.h); the full
// reference once per depth (one device: its time depends on neither). Writes compare.csv/json/md and,
// with more than one rate, one figure per shard count and depth: epoch time on the virtual clock
// against the link rate (link_P<P>_L<L>.svg), with the rate below which GNNPipe beats graph
// parallelism.
struct GnnCompareOptions {
  std::vector<uint32_t> layers = {8, 16};
  std::vector<std::string> modes = {"full", "pipe", "graph"};
  std::vector<uint32_t> parts;        // empty: the scenario's gnn.parts
  std::vector<double> link_mbps;      // empty: the scenario's gnn.link_mbps
  std::string out = "runs/gnn-compare";
};
int RunGnnCompare(const Scenario& sc, const GnnCompareOptions& opt, const std::string& exe);

}  // namespace edgebed
