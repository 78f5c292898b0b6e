// One GNN run's figures, whichever layout trained it: the shards' epoch reports combined into
// metrics.csv / metrics.jsonl rows, and summary.json with accuracy, epochs to converge, traffic by
// kind beside the analytic counts, epoch times and staleness. The server (pipe, graph) and the
// in-process reference (full) write the same files.
#pragma once
#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gnn/gnn_model.h"
#include "record/files.h"

namespace edgebed {

// What one shard sent during one epoch, by TensorKind: frame bytes and float values.
struct ShardTraffic {
  std::array<uint64_t, kTensorKinds> bytes{};
  std::array<uint64_t, kTensorKinds> values{};
};

// Analytic float values per epoch (ml.md): pipe 2 (P-1) N d (half embeddings, half gradients);
// graph 2 L |halo| d plus the gradient all-reduce P (P-1) |theta|. Evaluation: (P-1) N d / L |halo| d.
struct AnalyticTraffic {
  uint64_t pipe_embedding = 0, pipe_gradient = 0, pipe_eval = 0;
  uint64_t graph_embedding = 0, graph_gradient = 0, graph_parameter = 0, graph_eval = 0;
  uint64_t halo = 0, edge_cut = 0;  // of the P-way partition graph parallelism uses
  // hybrid (P stages x Q partitions): 2 (P-1) N d + 2 L |halo_Q| d, all-reduce Q (Q-1) |theta|.
  uint64_t hybrid_embedding = 0, hybrid_gradient = 0, hybrid_parameter = 0, hybrid_eval = 0, hybrid_halo = 0;
  uint64_t parameters = 0;
};
Result<AnalyticTraffic> AnalyticCounts(const Graph& g, const GnnConfig& cfg);

class GnnReport {
 public:
  GnnReport(const GnnConfig& cfg, const Graph& g, AnalyticTraffic analytic, std::string out_dir);
  Status Open();  // creates metrics.csv (header) and metrics.jsonl
  // A resumed run: keeps the rows of epochs 1..last_epoch (in both files and for the summary), drops
  // the rest, and appends from there. Errors name the file.
  [[nodiscard]] Status Reopen(uint32_t last_epoch);
  // Combines every shard's figures for `epoch`; wall_s is the epoch's time seen by the coordinator.
  [[nodiscard]] Status AddEpoch(uint32_t epoch, const std::vector<ShardStats>& shards, const std::vector<ShardTraffic>& traffic,
                double wall_s);
  nlohmann::json Summary() const;  // also the run's description, parameters, analytic counts
  const std::vector<nlohmann::json>& rows() const { return rows_; }

 private:
  // The analytic values per epoch by tensor kind (eval: per evaluation) for the configured mode.
  std::array<uint64_t, kTensorKinds> AnalyticValues() const;
  GnnConfig cfg_;
  std::string graph_description_;
  double feature_bayes_ = -1.0;
  uint32_t n_ = 0;
  AnalyticTraffic analytic_;
  std::string dir_;
  LineFile csv_, jsonl_;  // every row checked: a failed write is an error naming the file
  std::vector<nlohmann::json> rows_;
};

}  // namespace edgebed
