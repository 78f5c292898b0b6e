// `edgebed gnn compare`: the full reference, GNNPipe and graph parallelism (and hybrid) trained on
// the same graph and model, at every depth, shard count and virtual link rate.
#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "record/figure.h"
#include "record/files.h"
#include "record/progress.h"
#include "tools/gnn.h"
#include "tools/launcher.h"

namespace edgebed {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string Rate(double mbps) { return mbps > 0 ? fmt::format("{:g} Mbit/s", mbps) : std::string("free"); }

double Num(const json& s, const char* key) { return s.contains(key) && s[key].is_number() ? s[key].get<double>() : NAN; }

// Embedding and gradient values per epoch by the analytic count.
double AnalyticActivations(const json& s) {
  const auto& t = s["traffic"];
  return t["embedding"]["analytic_values_per_epoch"].get<double>() + t["gradient"]["analytic_values_per_epoch"].get<double>();
}

std::string CsvLine(const json& s) {
  const auto& t = s["traffic"];
  return fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", Num(s, "link_mbps"), Num(s, "link_delay_ms"),
                     s["layers"].dump(), s["mode"].get<std::string>(), s["parts"].dump(), s["chunks"].dump(),
                     Num(s, "test_accuracy"), Num(s, "best_val_accuracy"), s["epochs_to_converge"].dump(),
                     s["epochs_completed"].dump(), Num(s, "activation_values_per_epoch"), AnalyticActivations(s),
                     t["parameter"]["values_per_epoch"].get<double>(), Num(s, "train_bytes_per_epoch"),
                     Num(s, "median_epoch_s"), Num(s, "median_train_s"), Num(s, "median_virtual_epoch_s"),
                     Num(s, "median_wait_share"), Num(s, "stale_share"), Num(s, "stale_rel_error"));
}

// The rate [Mbit/s] at which GNNPipe's and graph parallelism's virtual epoch times cross, interpolated
// in log rate between neighbouring measured rates (> 0: free links have no place on that axis); NaN
// when they do not cross in the range.
double CrossingRate(const std::vector<double>& rates, const std::vector<double>& pipe, const std::vector<double>& graph) {
  for (size_t i = 1; i < rates.size(); ++i) {
    const double a = graph[i - 1] - pipe[i - 1], b = graph[i] - pipe[i];
    if (rates[i - 1] <= 0 || rates[i] <= 0) continue;
    if (!(std::isfinite(a) && std::isfinite(b)) || a * b > 0 || a == b) continue;
    const double f = a / (a - b);
    return std::exp(std::log(rates[i - 1]) + f * (std::log(rates[i]) - std::log(rates[i - 1])));
  }
  return NAN;
}

}  // namespace

int RunGnnCompare(const Scenario& base, const GnnCompareOptions& opt, const std::string& exe) {
  std::error_code ec;
  fs::create_directories(opt.out, ec);
  const std::vector<uint32_t> parts = opt.parts.empty() ? std::vector<uint32_t>{base.gnn.parts} : opt.parts;
  const std::vector<double> rates = opt.link_mbps.empty() ? std::vector<double>{base.gnn.link_mbps} : opt.link_mbps;
  const bool sweep = parts.size() > 1 || rates.size() > 1;
  size_t total = 0;
  for (const auto& m : opt.modes) total += m == "full" ? opt.layers.size() : opt.layers.size() * parts.size() * rates.size();
  Progress progress("gnn compare", static_cast<double>(total), "runs done", 0.0, /*live=*/false);  // a line per run
  double runs_done = 0;
  json results = json::array();
  std::map<uint32_t, json> full_of;  // the reference per depth
  for (double rate : rates)
    for (uint32_t p : parts)
      for (uint32_t layers : opt.layers)
        for (const auto& mode : opt.modes) {
          if (mode == "full" && full_of.count(layers)) continue;
          Scenario sc = base;
          sc.gnn.layers = layers;
          sc.gnn.mode = mode;
          sc.gnn.parts = p;
          sc.gnn.link_mbps = rate;
          sc.nodes = sc.gnn.shards();
          const std::string tag = (sweep && mode != "full" ? fmt::format("r{:g}-P{}-", rate, p) : std::string()) +
                                  "L" + std::to_string(layers) + "-" + mode;
          sc.name = base.name + "-" + tag;
          sc.output_dir = opt.out + "/" + tag;
          progress.Update(runs_done++, fmt::format("next: {} layers, {}, P = {}, link {}", layers, mode, p, Rate(rate)));
          const int rc = mode == "full" ? RunGnnReference(sc) : RunFederation(sc, exe);
          auto text = ReadFile(sc.output_dir + "/summary.json");
          if (rc != 0 || !text.ok()) {
            spdlog::error("{} layers, {}, P = {}: the run failed (exit {}); see {}", layers, mode, p, rc, sc.output_dir);
            return rc ? rc : 1;
          }
          json s = json::parse(text.value(), nullptr, /*allow_exceptions=*/false);
          if (s.is_discarded()) {
            spdlog::error("{}/summary.json is not JSON", sc.output_dir);
            return 1;
          }
          s["layers"] = layers;
          if (mode == "full") {
            s["link_mbps"] = nullptr;  // one device: no link
            full_of[layers] = s;
          }
          results.push_back(s);
        }
  std::string csv =
      "link_mbps,link_delay_ms,layers,mode,parts,chunks,test_accuracy,best_val_accuracy,epochs_to_converge,epochs,"
      "activation_values_per_epoch,analytic_activation_values,parameter_values_per_epoch,train_bytes_per_epoch,"
      "median_epoch_s,median_train_s,median_virtual_epoch_s,median_wait_share,stale_share,stale_rel_error\n";
  for (const auto& s : results) csv += CsvLine(s) + "\n";
  std::ostringstream md;
  md << "| link | L | mode | P | test acc. | epochs to converge | activation values / epoch (measured) | analytic | "
        "parameter values / epoch | median epoch s (wall) | median epoch s (virtual) | waiting share |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : results) {
    const auto& t = s["traffic"];
    md << "| " << (s["mode"] == "full" ? std::string("-") : Rate(Num(s, "link_mbps"))) << " | " << s["layers"] << " | "
       << s["mode"].get<std::string>() << " | " << s["shards"] << " | " << fmt::format("{:.2f}%", 100 * Num(s, "test_accuracy"))
       << " | " << s["epochs_to_converge"] << " | " << fmt::format("{:.0f}", Num(s, "activation_values_per_epoch")) << " | "
       << fmt::format("{:.0f}", AnalyticActivations(s))
       << " | " << fmt::format("{:.0f}", t["parameter"]["values_per_epoch"].get<double>()) << " | "
       << fmt::format("{:.3f}", Num(s, "median_epoch_s")) << " | " << fmt::format("{:.3f}", Num(s, "median_virtual_epoch_s"))
       << " | " << fmt::format("{:.0f}%", 100 * s.value("median_wait_share", 0.0)) << " |\n";
  }
  // Per link, shard count and depth: the two layouts against each other and against one device.
  auto find = [&](double rate, uint32_t p, uint32_t layers, const char* mode) -> const json* {
    for (const auto& s : results)
      if (s["mode"] == mode && s["layers"] == layers && s["parts"] == p && Num(s, "link_mbps") == rate) return &s;
    return nullptr;
  };
  std::vector<Figure> figures;
  for (uint32_t p : parts)
    for (uint32_t layers : opt.layers) {
      std::vector<double> xs, pipe_t, graph_t;
      for (double rate : rates) {
        const json* pipe = find(rate, p, layers, "pipe");
        const json* graph = find(rate, p, layers, "graph");
        const double tp = pipe ? Num(*pipe, "median_virtual_epoch_s") : NAN;
        const double tg = graph ? Num(*graph, "median_virtual_epoch_s") : NAN;
        xs.push_back(rate);
        pipe_t.push_back(tp);
        graph_t.push_back(tg);
        if (!pipe || !graph) continue;
        md << "\nP = " << p << ", L = " << layers << ", link " << Rate(rate) << ": graph parallelism / GNNPipe activation values "
           << fmt::format("{:.2f}x", Num(*graph, "activation_values_per_epoch") / Num(*pipe, "activation_values_per_epoch"))
           << ", all training bytes " << fmt::format("{:.2f}x", Num(*graph, "train_bytes_per_epoch") / Num(*pipe, "train_bytes_per_epoch"))
           << ", virtual epoch time " << fmt::format("{:.2f}x", tg / tp);
        if (full_of.count(layers)) {
          const double tf = Num(full_of[layers], "median_virtual_epoch_s");
          md << "; speedup over one device: GNNPipe " << fmt::format("{:.2f}x", tf / tp) << ", graph parallelism "
             << fmt::format("{:.2f}x", tf / tg);
        }
        md << "\n";
      }
      if (rates.size() < 2) continue;
      const double cross = CrossingRate(xs, pipe_t, graph_t);
      if (std::isfinite(cross))
        md << "\nP = " << p << ", L = " << layers << ": GNNPipe and graph parallelism cross at about "
           << fmt::format("{:.0f}", cross) << " Mbit/s\n";
      Figure f;
      f.key = fmt::format("link_P{}_L{}", p, layers);
      f.title = fmt::format("{}: P = {}, L = {}, {} ms one-way delay", base.name, p, layers, base.gnn.link_delay_ms);
      f.x_label = "link rate per device (Mbit/s)";
      f.y_label = "training epoch on the virtual clock (s)";
      f.log_x = true;
      f.integer_x = false;
      f.log_y = true;  // from tens of ms to seconds
      f.series.push_back({"GNNPipe", xs, pipe_t});
      f.series.push_back({"graph parallelism", xs, graph_t});
      if (full_of.count(layers)) {
        const double tf = Num(full_of[layers], "median_virtual_epoch_s");
        f.series.push_back({"one device", xs, std::vector<double>(xs.size(), tf)});
      }
      figures.push_back(std::move(f));
    }
  for (const auto& [path, text] : {std::pair<std::string, std::string>{opt.out + "/compare.csv", csv},
                                   {opt.out + "/compare.json", results.dump(2) + "\n"},
                                   {opt.out + "/compare.md", md.str()}})
    if (Status st = WriteFileAtomic(path, text); !st.ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
  if (!figures.empty()) {
    auto svgs = RenderSvgs(figures, {720, 420, opt.out, opt.out + "/gnuplot.log"});
    if (!svgs.ok()) {
      spdlog::error("{}", svgs.status().message());
      return 1;
    }
    spdlog::info("figures: {}/link_P*_L*.svg", opt.out);
  }
  std::cout << md.str();
  spdlog::info("compare: {0}/compare.csv, {0}/compare.json, {0}/compare.md", opt.out);
  return 0;
}

}  // namespace edgebed
