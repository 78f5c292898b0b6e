#include "gnn/gnn_report.h"

#include <array>

#include <sstream>

#include <algorithm>
#include <cmath>

namespace edgebed {
using json = nlohmann::json;

Result<AnalyticTraffic> AnalyticCounts(const Graph& g, const GnnConfig& cfg) {
  AnalyticTraffic a;
  const uint64_t n = g.num_vertices(), d = cfg.hidden, p = cfg.parts, l = cfg.layers;
  a.parameters = GnnParameterCount(cfg, g.feature_dim, g.num_classes);
  a.pipe_embedding = a.pipe_gradient = a.pipe_eval = (p - 1) * n * d;
  GnnConfig gc = cfg;
  gc.mode = "graph";
  auto part = LayoutPartition(g, gc);
  if (!part.ok()) return part.status();
  a.halo = p > 1 ? HaloVertices(g, part.value(), cfg.parts) : 0;
  a.edge_cut = p > 1 ? EdgeCut(g, part.value()) : 0;
  a.graph_embedding = a.graph_gradient = a.graph_eval = l * a.halo * d;
  a.graph_parameter = p * (p - 1) * a.parameters;
  if (cfg.mode == "hybrid") {  // stages pass N d between them; each layer's halo is of the Q-way partition
    const uint64_t q = cfg.partitions;
    gc.mode = "hybrid";
    auto hp = LayoutPartition(g, gc);
    if (!hp.ok()) return hp.status();
    a.hybrid_halo = q > 1 ? HaloVertices(g, hp.value(), cfg.partitions) : 0;
    a.hybrid_embedding = a.hybrid_gradient = a.hybrid_eval = (p - 1) * n * d + l * a.hybrid_halo * d;
    a.hybrid_parameter = q * (q - 1) * a.parameters;
  }
  return a;
}

GnnReport::GnnReport(const GnnConfig& cfg, const Graph& g, AnalyticTraffic analytic, std::string out_dir)
    : cfg_(cfg), graph_description_(g.description), feature_bayes_(g.feature_bayes_accuracy), n_(g.num_vertices()),
      analytic_(analytic), dir_(std::move(out_dir)) {}

Status GnnReport::Open() {
  EDGEBED_RETURN_IF_ERROR(csv_.Open(dir_ + "/metrics.csv", /*append=*/false));
  EDGEBED_RETURN_IF_ERROR(jsonl_.Open(dir_ + "/metrics.jsonl", /*append=*/false));
  return csv_.Append("epoch,test_accuracy,test_loss,train_loss,train_accuracy,val_accuracy,embedding_bytes,gradient_bytes,"
                     "parameter_bytes,eval_bytes,epoch_s,train_s,eval_s,stale_share,stale_rel_error,max_staleness,"
                     "virtual_epoch_s");
}

Status GnnReport::Reopen(uint32_t last_epoch) {
  const std::string jsonl_path = dir_ + "/metrics.jsonl", csv_path = dir_ + "/metrics.csv";
  auto jsonl = ReadFile(jsonl_path);
  if (!jsonl.ok()) return jsonl.status();
  auto csv = ReadFile(csv_path);
  if (!csv.ok()) return csv.status();
  std::string kept_jsonl, kept_csv;
  rows_.clear();
  std::istringstream in(jsonl.value());
  for (std::string line; std::getline(in, line);) {
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.contains("epoch") || !row["epoch"].is_number_unsigned()) break;  // cut by the crash
    if (row["epoch"].get<uint32_t>() > last_epoch) break;
    kept_jsonl += line + "\n";
    rows_.push_back(std::move(row));
  }
  if (rows_.size() != last_epoch)
    return Status::Corruption(jsonl_path + " holds " + std::to_string(rows_.size()) + " whole rows up to epoch " +
                              std::to_string(last_epoch) + "; the checkpoint needs all of them");
  std::istringstream cin(csv.value());
  std::string line;
  std::getline(cin, line);
  kept_csv = line + "\n";  // the header
  size_t csv_rows = 0;
  for (; csv_rows < last_epoch && std::getline(cin, line); ++csv_rows) kept_csv += line + "\n";
  if (csv_rows != last_epoch)
    return Status::Corruption(csv_path + " holds " + std::to_string(csv_rows) + " rows; the checkpoint needs " +
                              std::to_string(last_epoch));
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(jsonl_path, kept_jsonl));
  EDGEBED_RETURN_IF_ERROR(WriteFileAtomic(csv_path, kept_csv));
  EDGEBED_RETURN_IF_ERROR(jsonl_.Open(jsonl_path, /*append=*/true));
  return csv_.Open(csv_path, /*append=*/true);
}

Status GnnReport::AddEpoch(uint32_t epoch, const std::vector<ShardStats>& shards, const std::vector<ShardTraffic>& traffic,
                         double wall_s) {
  ShardStats sum;
  double train_s = 0.0, eval_s = 0.0, wait_s = 0.0, wait_share = 0.0, virtual_s = 0.0;
  for (const auto& s : shards) {
    wait_s = std::max(wait_s, s.wait_s);
    if (s.train_s + s.eval_s > 0) wait_share = std::max(wait_share, s.wait_s / (s.train_s + s.eval_s));
    sum.train_loss += s.train_loss;
    sum.train_correct += s.train_correct;
    sum.train_seen += s.train_seen;
    sum.evaluated |= s.evaluated;
    for (int k = 0; k < 3; ++k) sum.correct[k] += s.correct[k], sum.total[k] += s.total[k];
    sum.test_loss += s.test_loss;
    sum.stale_reads += s.stale_reads;
    sum.fresh_reads += s.fresh_reads;
    sum.max_staleness = std::max(sum.max_staleness, s.max_staleness);
    sum.stale_diff_sq += s.stale_diff_sq;
    sum.stale_norm_sq += s.stale_norm_sq;
    train_s = std::max(train_s, s.train_s);
    eval_s = std::max(eval_s, s.eval_s);
    virtual_s = std::max(virtual_s, s.virtual_train_s);
  }
  ShardTraffic all;
  for (const auto& t : traffic)
    for (int k = 0; k < kTensorKinds; ++k) all.bytes[k] += t.bytes[k], all.values[k] += t.values[k];
  auto acc = [&](int k) { return sum.total[k] ? json(static_cast<double>(sum.correct[k]) / sum.total[k]) : json(nullptr); };
  const uint64_t reads = sum.stale_reads + sum.fresh_reads;
  json row = {{"epoch", epoch},
              {"train_loss", sum.train_loss},
              {"train_accuracy", sum.train_seen ? static_cast<double>(sum.train_correct) / sum.train_seen : 0.0},
              {"evaluated", sum.evaluated},
              {"test_accuracy", acc(2)},
              {"val_accuracy", acc(1)},
              {"eval_train_accuracy", acc(0)},
              {"test_loss", sum.evaluated ? json(sum.test_loss) : json(nullptr)},
              {"epoch_s", wall_s},
              {"train_s", train_s},
              {"eval_s", eval_s},
              {"virtual_epoch_s", virtual_s},  // training, on the virtual clock: the slowest shard's
              {"wait_s", wait_s},          // the longest any shard waited for its peers
              {"wait_share", wait_share},  // the largest share of a shard's epoch spent waiting
              {"stale_reads", sum.stale_reads},
              {"fresh_reads", sum.fresh_reads},
              {"stale_share", reads ? static_cast<double>(sum.stale_reads) / reads : 0.0},
              {"stale_rel_error", sum.stale_norm_sq > 0 ? std::sqrt(sum.stale_diff_sq / sum.stale_norm_sq) : 0.0},
              {"max_staleness", sum.max_staleness}};
  const std::array<uint64_t, kTensorKinds> analytic = AnalyticValues();
  for (int k = 0; k < kTensorKinds; ++k) {
    const std::string name = TensorKindName(static_cast<TensorKind>(k));
    row[name + "_bytes"] = all.bytes[k];
    row[name + "_values"] = all.values[k];
    row[name + "_analytic_values"] = analytic[k];  // per epoch (eval: per evaluation), for the report
  }
  auto num = [](const json& j) { return j.is_null() ? std::string() : j.dump(); };
  std::ostringstream csv;
  csv << epoch << ',' << num(row["test_accuracy"]) << ',' << num(row["test_loss"]) << ',' << sum.train_loss << ','
      << row["train_accuracy"].get<double>() << ',' << num(row["val_accuracy"]) << ',' << all.bytes[0] << ','
      << all.bytes[1] << ',' << all.bytes[2] << ',' << all.bytes[3] << ',' << wall_s << ',' << train_s << ',' << eval_s
      << ',' << row["stale_share"].get<double>() << ',' << row["stale_rel_error"].get<double>() << ','
      << sum.max_staleness << ',' << virtual_s;
  const std::string line = row.dump();
  rows_.push_back(std::move(row));
  EDGEBED_RETURN_IF_ERROR(jsonl_.Append(line));
  return csv_.Append(csv.str());
}

std::array<uint64_t, kTensorKinds> GnnReport::AnalyticValues() const {
  const bool pipe = cfg_.mode == "pipe", graph = cfg_.mode == "graph", hybrid = cfg_.mode == "hybrid";
  return {pipe ? analytic_.pipe_embedding : graph ? analytic_.graph_embedding : hybrid ? analytic_.hybrid_embedding : 0,
          pipe ? analytic_.pipe_gradient : graph ? analytic_.graph_gradient : hybrid ? analytic_.hybrid_gradient : 0,
          graph ? analytic_.graph_parameter : hybrid ? analytic_.hybrid_parameter : 0,
          pipe ? analytic_.pipe_eval : graph ? analytic_.graph_eval : hybrid ? analytic_.hybrid_eval : 0};
}

json GnnReport::Summary() const {
  json s = {{"mode", cfg_.mode}, {"layer", cfg_.layer}, {"layers", cfg_.layers}, {"hidden", cfg_.hidden},
            {"parts", cfg_.mode == "full" ? 1u : cfg_.parts}, {"chunks", cfg_.mode == "pipe" ? cfg_.chunks : 1u},
            {"partitions", cfg_.mode == "hybrid" ? cfg_.partitions : cfg_.mode == "graph" ? cfg_.parts : 1u},
            {"shards", cfg_.shards()},
            {"graph", graph_description_}, {"vertices", n_}, {"parameters", analytic_.parameters},
            {"epochs_completed", rows_.size()}};
  if (feature_bayes_ >= 0) s["feature_only_bayes_accuracy"] = feature_bayes_;
  // Accuracy: the test accuracy at the epoch of best validation accuracy; converged: the first
  // epoch whose validation accuracy is within one point of that best.
  double best_val = -1.0, test_at_best = 0.0, last_test = 0.0;
  uint32_t best_epoch = 0, converged = 0;
  for (const auto& r : rows_)
    if (r["val_accuracy"].is_number() && r["val_accuracy"].get<double>() > best_val) {
      best_val = r["val_accuracy"].get<double>();
      test_at_best = r["test_accuracy"].get<double>();
      best_epoch = r["epoch"].get<uint32_t>();
    }
  for (const auto& r : rows_) {
    if (r["test_accuracy"].is_number()) last_test = r["test_accuracy"].get<double>();
    if (!converged && r["val_accuracy"].is_number() && r["val_accuracy"].get<double>() >= best_val - 0.01)
      converged = r["epoch"].get<uint32_t>();
  }
  s["best_val_accuracy"] = best_val;
  s["test_accuracy"] = test_at_best;
  s["best_epoch"] = best_epoch;
  s["final_test_accuracy"] = last_test;
  s["epochs_to_converge"] = converged;
  // Traffic per training epoch (mean over epochs) by kind, and the analytic count.
  json traffic = json::object();
  const size_t e = std::max<size_t>(1, rows_.size());
  size_t evals = 0;
  for (const auto& r : rows_) evals += r["evaluated"].get<bool>();
  const std::array<uint64_t, kTensorKinds> analytic = AnalyticValues();
  double train_bytes = 0, train_values = 0;
  for (int k = 0; k < kTensorKinds; ++k) {
    const std::string name = TensorKindName(static_cast<TensorKind>(k));
    double bytes = 0, values = 0;
    for (const auto& r : rows_) bytes += r[name + "_bytes"].get<double>(), values += r[name + "_values"].get<double>();
    const double per = k == 3 ? std::max<size_t>(1, evals) : e;  // eval: per evaluation
    traffic[name] = {{"bytes_per_epoch", bytes / per}, {"values_per_epoch", values / per},
                     {"analytic_values_per_epoch", analytic[k]}};
    if (k < 3) train_bytes += bytes / e, train_values += values / e;
  }
  s["traffic"] = traffic;
  s["train_bytes_per_epoch"] = train_bytes;
  s["train_values_per_epoch"] = train_values;
  s["activation_values_per_epoch"] = traffic["embedding"]["values_per_epoch"].get<double>() +
                                     traffic["gradient"]["values_per_epoch"].get<double>();
  s["analytic"] = {{"pipe_values_per_epoch", analytic_.pipe_embedding + analytic_.pipe_gradient},
                   {"graph_values_per_epoch", analytic_.graph_embedding + analytic_.graph_gradient},
                   {"graph_parameter_values_per_epoch", analytic_.graph_parameter},
                   {"graph_over_pipe", analytic_.pipe_embedding ? static_cast<double>(analytic_.graph_embedding) /
                                                                      analytic_.pipe_embedding
                                                                : 0.0},
                   {"halo_vertices", analytic_.halo},
                   {"hybrid_values_per_epoch", analytic_.hybrid_embedding + analytic_.hybrid_gradient},
                   {"hybrid_halo_vertices", analytic_.hybrid_halo},
                   {"edge_cut", analytic_.edge_cut}};
  std::vector<double> times, trains, waits, virtuals;
  double stale_share = 0, stale_err = 0;
  uint32_t max_stale = 0;
  for (const auto& r : rows_) {
    times.push_back(r["epoch_s"].get<double>());
    trains.push_back(r["train_s"].get<double>());
    virtuals.push_back(r.value("virtual_epoch_s", 0.0));
    waits.push_back(r["wait_share"].get<double>());
    stale_share += r["stale_share"].get<double>();
    stale_err += r["stale_rel_error"].get<double>();
    max_stale = std::max(max_stale, r["max_staleness"].get<uint32_t>());
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  s["median_epoch_s"] = median(times);
  s["median_train_s"] = median(trains);
  s["median_virtual_epoch_s"] = median(virtuals);
  s["link_mbps"] = cfg_.link_mbps;
  s["link_delay_ms"] = cfg_.link_delay_ms;
  s["median_wait_share"] = median(waits);
  s["stale_share"] = stale_share / e;
  s["stale_rel_error"] = stale_err / e;
  s["max_staleness_epochs"] = max_stale;
  return s;
}

}  // namespace edgebed
