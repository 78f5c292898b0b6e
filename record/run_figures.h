// The figures of a run folder's mode, from its metrics rows (metrics.jsonl) and, once written, its
// summary: what report.html shows. Federated runs (every uplink, population, MobileTL): accuracy,
// loss, bytes, wall and virtual time, participation, training memory, and where present the channel
// per round and per node, the OTA decoder's error and FedBuff's staleness. Split learning: accuracy
// and bottleneck bytes per width. GNN: accuracy, traffic against the analytic count, staleness.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "record/figure.h"

namespace edgebed {

enum class RunMode { kFederated, kSplit, kGnn };

// From the rows' fields: "epoch" (GNN), "accuracy_by_width" (split), else federated.
RunMode DetectRunMode(const std::vector<nlohmann::json>& rows);
const char* RunModeName(RunMode mode);

// `summary` may be null (a run still going, or interrupted).
std::vector<Figure> RunFigures(const std::vector<nlohmann::json>& rows, const nlohmann::json& summary);

// Split inference (inference.csv, one object per request with its columns): latency against the
// deadline, the width chosen and the link's rate, over the trace's time, one curve per pass.
std::vector<Figure> InferenceFigures(const std::vector<nlohmann::json>& requests, const nlohmann::json& summary);

// Values of `field` (a JSON pointer such as "/ota/count_nmse" or a plain field name) per row; NaN
// where a row lacks it or it is not a number.
std::vector<double> RowValues(const std::vector<nlohmann::json>& rows, const std::string& field);

}  // namespace edgebed
