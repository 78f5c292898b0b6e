#include "record/run_figures.h"

#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace edgebed {

using json = nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Num(const json& j) { return j.is_number() ? j.get<double>() : kNaN; }

std::vector<double> Scaled(std::vector<double> v, double factor) {
  for (double& x : v) x *= factor;
  return v;
}

// A curve of `field` against the round (or epoch) axis; rows without the field leave gaps.
Series Curve(const std::vector<json>& rows, const std::vector<double>& x, const std::string& field,
             const std::string& label, double factor = 1.0) {
  return {label, x, Scaled(RowValues(rows, field), factor)};
}

// Rows from round 1 on (round 0 is the initial model's evaluation: no training, no traffic).
std::vector<json> Trained(const std::vector<json>& rows, const char* axis) {
  std::vector<json> out;
  for (const auto& r : rows)
    if (r.value(axis, 0u) > 0) out.push_back(r);
  return out;
}

// Keyed values of an object field per row (accuracy by width): one curve per key.
std::vector<Series> ByKey(const std::vector<json>& rows, const std::vector<double>& x, const std::string& field,
                          const std::string& prefix, double factor) {
  std::map<std::string, std::vector<double>> values;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto it = rows[i].find(field);
    if (it == rows[i].end() || !it->is_object()) continue;
    for (const auto& [k, v] : it->items()) {
      auto& col = values[k];
      col.resize(rows.size(), kNaN);
      col[i] = Num(v) * factor;
    }
  }
  std::vector<Series> out;
  for (auto& [k, v] : values) out.push_back({prefix + k, x, v});
  return out;
}

void Federated(const std::vector<json>& all, const json& summary, const LinkTotals* link, std::vector<Figure>* figs) {
  const std::vector<json> rows = Trained(all, "round");
  std::vector<double> x = RowValues(all, "round"), xt = RowValues(rows, "round");
  figs->push_back({"accuracy", "test accuracy by round", "round", "test accuracy (fraction correct)",
                   {Curve(all, x, "test_accuracy", "server test set")}});
  figs->push_back({"loss", "loss by round", "round", "loss (model's criterion)",
                   {Curve(all, x, "test_loss", "test"), Curve(rows, xt, "train_loss", "training (mean over updates)")}});
  figs->push_back({"bytes", "traffic by round", "round", "MB per round",
                   {Curve(rows, xt, "uplink_bytes", "uplink", 1e-6), Curve(rows, xt, "downlink_bytes", "downlink", 1e-6)}});
  figs->push_back({"time", "wall and virtual time", "round", "time since the start (s)",
                   {Curve(all, x, "elapsed_s", "wall clock"), Curve(all, x, "virtual_clock_s", "virtual clock (device time)")}});
  figs->push_back({"participation", "participation by round", "round", "nodes",
                   {Curve(rows, xt, "selected", "selected"), Curve(rows, xt, "participants", "updates aggregated"),
                    Curve(rows, xt, "failures", "failed"), Curve(rows, xt, "dropouts", "offline when selected"),
                    Curve(rows, xt, "stragglers", "stragglers")}});
  Figure memory{"memory", "training memory per node (largest in the round)", "round", "KiB",
                {Curve(rows, xt, "peak_train_kb_max", "peak during training"),
                 Curve(rows, xt, "kept_for_backward_kb_max", "kept for the backward pass")}};
  if (summary.is_object() && summary.value("kept_for_backward_bytes_analytic", json()).is_number())
    memory.series.push_back({"kept for backward, analytic", xt,
                             std::vector<double>(xt.size(), Num(summary["kept_for_backward_bytes_analytic"]) / 1024.0)});
  figs->push_back(std::move(memory));
  figs->push_back({"staleness", "staleness of the applied updates (FedBuff)", "server step", "staleness (server steps)",
                   {Curve(rows, xt, "staleness_mean", "mean"), Curve(rows, xt, "staleness_max", "largest")}});
  figs->push_back({"ota_error", "over-the-air decoder error by round", "round", "NMSE",
                   {Curve(rows, xt, "/ota/count_nmse", "count NMSE (decoded vs sent counts)"),
                    Curve(rows, xt, "/ota/aggregate_nmse", "aggregate NMSE (decoded vs ideal mean)")},
                   true});
  // The channel: per round, and per node over the run (nodes are the x axis).
  Figure loss{"channel_loss", "packets lost on the uplink by round", "round", "lost packets (% of sent)", {}};
  Figure air{"channel_airtime", "uplink airtime and transmit energy by round", "round", "s (airtime) / J (energy)",
             {Curve(rows, xt, "uplink_airtime_s", "airtime, all nodes (s)"),
              Curve(rows, xt, "uplink_tx_energy_j", "transmit energy, all nodes (J)")}};
  LinkTotals folded;
  if (!link) {  // rows that still carry their lists
    for (const auto& r : rows) folded.Fold(r);
    link = &folded;
  }
  const auto& per_node = link->per_node;
  Series share{"all nodes", {}, {}};
  for (const auto& [round, lost] : link->lost_share) share.x.push_back(round), share.y.push_back(lost);
  loss.series.push_back(std::move(share));
  double airtime = 0;
  for (const auto& [n, a] : per_node) airtime += a[2];
  if (airtime > 0) {
    figs->push_back(std::move(loss));
    figs->push_back(std::move(air));
    Series node_loss{"lost packets (%)", {}, {}, true}, node_air{"airtime over the run (s)", {}, {}, true},
        node_snr{"mean SNR (dB)", {}, {}, true};
    for (const auto& [n, a] : per_node) {
      node_loss.x.push_back(n), node_loss.y.push_back(a[0] > 0 ? 100.0 * a[1] / a[0] : kNaN);
      node_air.x.push_back(n), node_air.y.push_back(a[2]);
      node_snr.x.push_back(n), node_snr.y.push_back(a[4] > 0 ? a[3] / a[4] : kNaN);
    }
    figs->push_back({"channel_nodes", "the uplink per node over the run", "node index", "% (lost) / s (airtime)",
                     {node_loss, node_air}});
    figs->push_back({"channel_snr", "mean SNR per node", "node index", "SNR (dB)", {node_snr}});
  }
}

void Split(const std::vector<json>& rows, std::vector<Figure>* figs) {
  std::vector<double> x = RowValues(rows, "round");
  figs->push_back({"accuracy_by_width", "test accuracy by encoder width", "round", "test accuracy (fraction correct)",
                   ByKey(rows, x, "accuracy_by_width", "width ", 1.0)});
  auto channel = ByKey(rows, x, "channel_accuracy_by_width", "over the channel, width ", 1.0);
  if (!channel.empty())
    figs->push_back({"channel_accuracy_by_width", "test accuracy over the bottleneck link by width", "round",
                     "test accuracy (fraction correct)", channel});
  figs->push_back({"loss", "loss by round", "round", "loss (cross-entropy)",
                   {Curve(rows, x, "train_loss", "training"), Curve(rows, x, "test_loss", "test, full width")}});
  figs->push_back({"split_bytes", "traffic by round", "round", "MB per round",
                   {Curve(rows, x, "uplink_bottleneck_bytes", "uplink bottleneck activations", 1e-6),
                    Curve(rows, x, "uplink_head_bytes", "uplink headers and labels", 1e-6),
                    Curve(rows, x, "downlink_gradient_bytes", "downlink gradients", 1e-6)}});
  figs->push_back({"bytes_by_width", "uplink bottleneck bytes by width", "round", "MB per round",
                   ByKey(rows, x, "uplink_bottleneck_bytes_by_width", "width ", 1e-6)});
  figs->push_back({"split_channel", "the bottleneck link by round", "round", "s (airtime) / bit error rate x 1000",
                   {Curve(rows, x, "uplink_airtime_s", "airtime (s)"), Curve(rows, x, "bottleneck_ber", "BER x 1000", 1000.0)}});
  figs->push_back({"time", "time per round", "round", "s",
                   {Curve(rows, x, "wall_s", "round (wall)"), Curve(rows, x, "decoder_s", "server decoder")}});
}

void Gnn(const std::vector<json>& rows, std::vector<Figure>* figs) {
  std::vector<double> x = RowValues(rows, "epoch");
  figs->push_back({"accuracy", "accuracy by epoch", "epoch", "accuracy (fraction correct)",
                   {Curve(rows, x, "train_accuracy", "training"), Curve(rows, x, "val_accuracy", "validation"),
                    Curve(rows, x, "test_accuracy", "test")}});
  figs->push_back({"loss", "loss by epoch", "epoch", "loss (cross-entropy)",
                   {Curve(rows, x, "train_loss", "training"), Curve(rows, x, "test_loss", "test")}});
  Figure traffic{"gnn_traffic", "values exchanged between shards by epoch, against the analytic count", "epoch",
                 "values per epoch", {}};
  for (const char* kind : {"embedding", "gradient", "parameter"}) {
    const std::string k = kind;
    traffic.series.push_back(Curve(rows, x, k + "_values", k + "s, measured"));
    traffic.series.push_back(Curve(rows, x, k + "_analytic_values", k + "s, analytic"));
  }
  figs->push_back(std::move(traffic));
  figs->push_back({"gnn_staleness", "stale reads by epoch", "epoch", "share of reads / relative error",
                   {Curve(rows, x, "stale_share", "share of stale reads"),
                    Curve(rows, x, "stale_rel_error", "relative error of stale values")}});
  figs->push_back({"gnn_max_staleness", "largest staleness by epoch", "epoch", "staleness (epochs)",
                   {Curve(rows, x, "max_staleness", "largest")}});
  figs->push_back({"gnn_time", "time per epoch", "epoch", "s",
                   {Curve(rows, x, "epoch_s", "epoch (wall)"), Curve(rows, x, "train_s", "training, slowest shard"),
                    Curve(rows, x, "wait_s", "waiting for peers, longest")}});
}

}  // namespace

std::vector<Figure> InferenceFigures(const std::vector<json>& requests, const json& summary) {
  std::map<int, std::vector<json>> passes;
  for (const auto& r : requests) passes[r.value("pass", 0)].push_back(r);
  Figure latency{"inference_latency", "split inference: latency per request", "time on the bandwidth trace (s)",
                 "latency (ms)", {}};
  Figure width{"inference_width", "split inference: encoder width chosen per request", "time on the bandwidth trace (s)",
               "width", {}};
  Figure rate{"inference_rate", "split inference: the link's rate", "time on the bandwidth trace (s)", "rate (kbit/s)", {}};
  for (const auto& [pass, rows] : passes) {
    const std::string label = "pass " + std::to_string(pass) + " (" + rows.front().value("controller", std::string("?")) + ")";
    const std::vector<double> t = RowValues(rows, "t_s");
    latency.series.push_back({label, t, RowValues(rows, "latency_ms")});
    width.series.push_back({label, t, RowValues(rows, "width")});
    if (rate.series.empty()) rate.series.push_back({"trace", t, RowValues(rows, "kbps")});
  }
  const json deadline = summary.is_object() ? summary.value("/inference/deadline_ms"_json_pointer, json()) : json();
  if (deadline.is_number() && !latency.series.empty())
    latency.series.push_back({"deadline", latency.series[0].x,
                              std::vector<double>(latency.series[0].x.size(), deadline.get<double>())});
  std::vector<Figure> figs;
  for (Figure* f : {&latency, &width, &rate}) {
    f->integer_x = false;
    f->y_from_zero = true;
    if (f->HasData()) figs.push_back(std::move(*f));
  }
  return figs;
}

std::vector<double> RowValues(const std::vector<json>& rows, const std::string& field) {
  std::vector<double> v;
  v.reserve(rows.size());
  const bool pointer = !field.empty() && field[0] == '/';
  for (const auto& r : rows) {
    if (pointer) {
      const json::json_pointer p(field);
      v.push_back(r.contains(p) ? Num(r.at(p)) : kNaN);
    } else {
      auto it = r.find(field);
      v.push_back(it == r.end() ? kNaN : it->is_boolean() ? static_cast<double>(it->get<bool>()) : Num(*it));
    }
  }
  return v;
}

RunMode DetectRunMode(const std::vector<json>& rows) {
  for (const auto& r : rows) {
    if (r.contains("epoch")) return RunMode::kGnn;
    if (r.contains("accuracy_by_width")) return RunMode::kSplit;
  }
  return RunMode::kFederated;
}

const char* RunModeName(RunMode mode) {
  switch (mode) {
    case RunMode::kSplit: return "split learning";
    case RunMode::kGnn: return "GNN training";
    default: return "federated learning";
  }
}

void LinkTotals::Fold(const json& row) {
  if (row.value("round", 0u) == 0) return;  // the initial model's evaluation: nothing sent
  double packets = 0, lost = 0;
  for (const auto& n : row.value("link_per_node", json::array())) {
    auto& a = per_node[Num(n.value("node", json()))];
    a[0] += Num(n.value("packets", json(0))), a[1] += Num(n.value("lost_packets", json(0)));
    a[2] += Num(n.value("airtime_s", json(0))), a[3] += Num(n.value("snr_db", json(0))), a[4] += 1;
    packets += Num(n.value("packets", json(0))), lost += Num(n.value("lost_packets", json(0)));
  }
  lost_share.emplace_back(Num(row["round"]), packets > 0 ? 100.0 * lost / packets : kNaN);
}

void FoldAndTrim(json* row, LinkTotals* totals) {
  if (row->contains("round")) totals->Fold(*row);  // federated rows (GNN rows count epochs)
  for (const char* list : {"link_per_node", "failed_nodes", "offline_nodes"}) row->erase(list);
}

std::vector<Figure> RunFigures(const std::vector<json>& rows, const json& summary, const LinkTotals* link) {
  std::vector<Figure> figs;
  switch (DetectRunMode(rows)) {
    case RunMode::kSplit: Split(rows, &figs); break;
    case RunMode::kGnn: Gnn(rows, &figs); break;
    default: Federated(rows, summary, link, &figs);
  }
  static const std::set<std::string> from_zero = {
      "bytes", "time", "participation", "memory", "staleness", "channel_loss", "channel_airtime", "channel_nodes",
      "split_bytes", "bytes_by_width", "split_channel", "gnn_traffic", "gnn_staleness", "gnn_max_staleness", "gnn_time"};
  std::vector<Figure> with_data;
  for (auto& f : figs) {
    f.y_from_zero = from_zero.count(f.key) > 0;
    if (f.HasData()) with_data.push_back(std::move(f));
  }
  return with_data;
}

}  // namespace edgebed
