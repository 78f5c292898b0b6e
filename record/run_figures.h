// The figures of a run folder's mode, from its metrics rows (metrics.jsonl) and, once written, its
// summary: what report.html shows. Federated runs (every uplink, population, MobileTL): accuracy,
// loss, bytes, wall and virtual time, participation, training memory, and where present the channel
// per round and per node, the OTA decoder's error and FedBuff's staleness. Split learning: accuracy
// and bottleneck bytes per width. GNN: accuracy, traffic against the analytic count, staleness.
#pragma once
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "record/figure.h"

namespace edgebed {

enum class RunMode { kFederated, kSplit, kGnn };

// From the rows' fields: "epoch" (GNN), "accuracy_by_width" (split), else federated.
RunMode DetectRunMode(const std::vector<nlohmann::json>& rows);
const char* RunModeName(RunMode mode);

// The uplink per node over a run, and its packet loss per round, folded from the rows' link_per_node
// lists (an entry per participant and round: with 1,000 participants a round the lists are most of a
// report's memory, so the report folds each row as it reads it and drops them).
struct LinkTotals {
  std::map<double, std::array<double, 5>> per_node;   // node -> packets, lost, airtime, SNR sum, rounds
  std::vector<std::pair<double, double>> lost_share;  // (round, % of packets lost) for rounds >= 1
  void Fold(const nlohmann::json& row);
};
// Folds `row` into `totals` and drops the per-node lists no figure reads whole (link_per_node,
// failed_nodes, offline_nodes).
void FoldAndTrim(nlohmann::json* row, LinkTotals* totals);

// `summary` may be null (a run still going, or interrupted). `link`: the rows' lists already folded
// (FoldAndTrim); null folds them from `rows`.
std::vector<Figure> RunFigures(const std::vector<nlohmann::json>& rows, const nlohmann::json& summary,
                               const LinkTotals* link = nullptr);

// Split inference (inference.csv, one object per request with its columns): latency against the
// deadline, the width chosen and the link's rate, over the trace's time, one curve per pass.
std::vector<Figure> InferenceFigures(const std::vector<nlohmann::json>& requests, const nlohmann::json& summary);

// Values of `field` (a JSON pointer such as "/ota/count_nmse" or a plain field name) per row; NaN
// where a row lacks it or it is not a number.
std::vector<double> RowValues(const std::vector<nlohmann::json>& rows, const std::string& field);

}  // namespace edgebed
