#include "scenarios/scenario.h"

#include "splitnets/partition.h"

#include "splitnets/device_profile.h"
#include "splitnets/transfer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "scenarios/scenario_fields.h"
#include "scenarios/strategy_checks.h"
#include "scenarios/toml_fields.h"

namespace edgebed {
namespace {

const char kDefaultText[] =
#include "scenarios/default_scenario.inc"
    ;

using namespace toml_fields;

using scenario_detail::Fields;

// What a file may hold beyond the scalar fields (custom profiles, arrays of tables) and the checks
// across fields, after Fields has read them all.
Status Read(Reader& r, const toml::table& root, Scenario* s) {
  EDGEBED_RETURN_IF_ERROR(Fields(r, s));
  TransferConfig& tr = s->transfer;
  ChannelConfig& c = s->channel;
  OtaConfig& o = s->ota;
  GnnConfig& gn = s->gnn;
  GraphConfig& gg = gn.graph;
  SplitConfig& sp = s->split;
  SplitInferenceConfig& inf = sp.inference;
  EDGEBED_RETURN_IF_ERROR(CheckStrategyFields(*s));
  if (s->bind.rfind("tcp://", 0) != 0 && s->bind.rfind("ipc://", 0) != 0)
    return Status::InvalidArgument("server.bind = '" + s->bind + "' must be tcp://host:port or ipc://path");
  EDGEBED_RETURN_IF_ERROR(c.Validate());  // cross-field checks and the liquid name sets

  if (auto* profiles = root.get_as<toml::table>("profiles")) {
    for (const auto& [key, node] : *profiles) {
      const std::string name(key.str()), base = "profiles." + name;
      if (!node.is_table()) return Status::InvalidArgument(base + " must be a table of profile fields");
      DeviceProfile p;
      p.name = name;
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".train_gflops", &p.train_gflops, 0.0, 1e6));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".memory_mb", &p.memory_mb, 0.0, 1e9));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".uplink_bps", &p.uplink_bps, 0.0, 1e12));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".downlink_bps", &p.downlink_bps, 0.0, 1e12));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".tx_power_w", &p.tx_power_w, 0.0, 1e3));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".compute_power_w", &p.compute_power_w, 0.0, 1e5));
      EDGEBED_RETURN_IF_ERROR(r.Real(base + ".ms_per_sample", &p.ms_per_sample, 0.0, 1e7));
      s->custom_profiles[name] = p;
    }
  }
  if (auto mix = ParseProfileMix(s->profiles, "population.profiles", s->custom_profiles); !mix.ok()) return mix.status();
  if (s->availability == "trace" && !std::ifstream(s->trace_file))
    return Status::InvalidArgument("population.trace_file = '" + s->trace_file + "' cannot be opened");

  if (o.collect.size() > 0 && c.uplink != "digital_ota")
    return Status::InvalidArgument("ota.collect needs channel.uplink = \"digital_ota\" (it stores VQ indices)");

  // [gnn], [gnn.graph]: GNN training (model.name = "gnn"); read before the faults, which name its shards and epochs.
  gn.seed = s->seed;
  if (gg.train_fraction + gg.val_fraction >= 1.0)
    return Status::InvalidArgument("gnn.graph.train_fraction + gnn.graph.val_fraction must be below 1 (the rest is the test set)");
  if (s->is_gnn()) {
    if (gg.kind == "knn" && gg.vertices > 60000)
      return Status::InvalidArgument("gnn.graph.vertices = " + std::to_string(gg.vertices) + " for knn: allowed 2..60000 (Fashion-MNIST training images)");
    if (gg.kind == "edgelist" && (gg.edges.empty() || gg.labels.empty()))
      return Status::InvalidArgument("gnn.graph.kind = \"edgelist\" needs gnn.graph.edges and gnn.graph.labels (files)");
    if ((gn.mode == "pipe" || gn.mode == "hybrid") && gn.parts > gn.layers)
      return Status::InvalidArgument("gnn.parts = " + std::to_string(gn.parts) + " pipeline stages for gnn.layers = " +
                                     std::to_string(gn.layers) + ": allowed 1..gnn.layers (each stage holds a layer)");
    if (gn.mode != "full" && gn.parts < 2)
      return Status::InvalidArgument("gnn.parts = 1 with gnn.mode = \"" + gn.mode + "\": allowed 2..64 (one shard is gnn.mode = \"full\")");
    if (gn.chunks > gg.vertices || gn.parts > gg.vertices || gn.partitions > gg.vertices)
      return Status::InvalidArgument("gnn.chunks, gnn.parts and gnn.partitions must not exceed gnn.graph.vertices");
    if (gn.mode == "hybrid" && gn.partitions < 2)
      return Status::InvalidArgument("gnn.partitions = 1 with gnn.mode = \"hybrid\": allowed 2..64 (one partition is gnn.mode = \"pipe\" with gnn.chunks = 1)");
    if (s->simulated > 0) return Status::InvalidArgument("population.simulated must be 0 with model gnn (shards are real processes)");
    s->nodes = gn.shards();  // one node process per shard (full: none, trained in-process)
    s->rounds = gn.epochs;
  }
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "faults.corrupt", "{node = N, kind = \"sign_flip\"}", [&](Reader& sub) {
    CorruptFault f;
    Status st = sub.Int("node", &f.node, 0, int64_t{s->nodes} - 1);
    if (st.ok()) st = sub.Str("kind", &f.kind, {"sign_flip", "scale", "random"});
    if (st.ok()) st = sub.Real("factor", &f.factor, -1e6, 1e6);
    if (st.ok()) st = sub.Real("std", &f.std, 0.0, 1e6, true);
    if (st.ok()) st = sub.Int("from_round", &f.from_round, 1, s->rounds);
    if (!st.ok()) return st;
    if (f.kind == "sign_flip") f.factor = -1.0;
    if (f.factor == 0.0) return Status::InvalidArgument("factor = 0 is not a corruption; allowed: non-zero");
    s->corrupt.push_back(f);
    return Status::Ok();
  }));
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "faults.crash", "{node = N, round = R}", [&](Reader& sub) {
    CrashFault f;
    Status st = sub.Int("node", &f.node, 0, int64_t{s->nodes} - 1);
    if (st.ok()) st = sub.Int("round", &f.round, 1, s->rounds);
    if (st.ok()) s->crashes.push_back(f);
    return st;
  }));
  EDGEBED_RETURN_IF_ERROR(ReadTableArray(r, root, "split.bandwidth", "{t_s = 0.0, kbps = 1000.0}", [&](Reader& sub) {
    RatePoint p;
    Status st = sub.Real("t_s", &p.t_s, 0.0, 1e9);
    if (st.ok()) st = sub.Real("kbps", &p.kbps, 0.0, 1e7, true);
    if (st.ok()) sp.bandwidth.push_back(p);
    return st;
  }));
  if (auto trace = BandwidthTrace::Create(sp.bandwidth); !trace.ok()) return trace.status();
  EDGEBED_RETURN_IF_ERROR(ScenarioSlimConfig(*s).Validate());
  if (sp.gradient_bits != 8 && sp.gradient_bits != 32)
    return Status::InvalidArgument("split.gradient_bits = " + std::to_string(sp.gradient_bits) + "; allowed 8 or 32");
  if (s->is_split()) {
    if (WidthIndex(ScenarioSlimConfig(*s), sp.train_width) < 0 && sp.train_width > 0.0)
      return Status::InvalidArgument("split.train_width = " + std::to_string(sp.train_width) + " is not one of split.widths");
    if (WidthIndex(ScenarioSlimConfig(*s), inf.fixed_width) < 0)
      return Status::InvalidArgument("split.inference.fixed_width = " + std::to_string(inf.fixed_width) +
                                     " is not one of split.widths");
    if (c.uplink != "ideal" && c.uplink != "digital")
      return Status::InvalidArgument("channel.uplink = \"" + c.uplink +
                                     "\" cannot carry split activations; model slimsplit needs ideal or digital");
    if (!s->data.classes.empty()) return Status::InvalidArgument("data.classes is not supported with model slimsplit (all 10 classes)");
    if (s->data.format != "fashion-mnist") return Status::InvalidArgument("model slimsplit learns Fashion-MNIST; data.format must be fashion-mnist");
    if (s->simulated > 0) return Status::InvalidArgument("population.simulated must be 0 with model slimsplit (split nodes are real processes)");
    if (inf.requests > 0 && s->nodes < 1) return Status::InvalidArgument("split.inference needs a node");
  }
  EDGEBED_RETURN_IF_ERROR(r.CheckNoUnknown());
  if (s->model == "torchscript" && s->torchscript.path.empty())
    return Status::InvalidArgument("model.name = \"torchscript\" needs model.path (a module saved by torch.jit.save)");
  if (s->model != "torchscript" && !s->torchscript.path.empty())
    return Status::InvalidArgument("model.path is set but model.name = \"" + s->model + "\"; a TorchScript module needs model.name = \"torchscript\"");
  if (s->partition == "natural" && s->data.format != "npz")
    return Status::InvalidArgument("data.partition = natural needs client ids: data.format = \"npz\" with an array client_id");
  if (!tr.backbone.empty()) {
    if (s->model != "irbnet" && s->model != "irbnet_hs")
      return Status::InvalidArgument("transfer.backbone is set but model.name = \"" + s->model +
                                     "\"; transfer learning needs an IRB network (irbnet or irbnet_hs)");
    const ModelSpec spec = ScenarioModel(*s);
    auto k = BlocksWithinBudget(spec.transfer, spec.num_classes);
    if (!k.ok()) return k.status();
  }
  return Status::Ok();
}

}  // namespace

SlimConfig ScenarioSlimConfig(const Scenario& sc) {
  SlimConfig c;
  c.widths = sc.split.widths;
  c.bottleneck_channels = static_cast<int>(sc.split.bottleneck_channels);
  return c;
}

TrainOptions ScenarioTrainOptions(const Scenario& sc) {
  TrainOptions t;
  t.epochs = static_cast<int>(sc.local_epochs);
  t.batch_size = static_cast<int>(sc.batch_size);
  t.learning_rate = static_cast<float>(sc.learning_rate);
  t.momentum = static_cast<float>(sc.momentum);
  t.optimizer = sc.optimizer;
  t.weight_decay = static_cast<float>(sc.weight_decay);
  return t;
}

ModelSpec ScenarioModel(const Scenario& sc, const DataPlan* plan) {
  ModelSpec m;
  m.name = sc.model;
  if (plan) m.num_classes = plan->train.num_classes;
  else if (!sc.data.classes.empty()) m.num_classes = static_cast<int>(sc.data.classes.size());
  m.torchscript = sc.torchscript;
  m.transfer = sc.transfer;
  m.transfer.batch_size = static_cast<int>(sc.batch_size);
  m.transfer.momentum = sc.momentum > 0.0;
  return m;
}

DataSpec ScenarioDataSpec(const Scenario& sc) {
  DataSpec d = sc.data;
  d.seed = sc.seed;
  return d;
}

PartitionSpec ScenarioPartition(const Scenario& sc) {
  PartitionSpec spec;
  spec.kind = sc.partition;
  spec.alpha = sc.dirichlet_alpha;
  spec.shards_per_node = sc.shards_per_node;
  spec.num_nodes = sc.nodes;
  spec.seed = sc.seed;
  spec.min_samples = sc.min_samples;
  spec.samples_per_node = sc.samples_per_node;
  return spec;
}

Result<Dataset> LoadScenarioData(const Scenario& sc, bool train) {
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(ScenarioDataSpec(sc)));
  if (!train) return LoadTestSet(plan);
  std::vector<uint32_t> all(plan.train_rows.size());
  std::iota(all.begin(), all.end(), 0u);
  return LoadTrainRows(plan, all);
}

Result<std::vector<uint64_t>> ScenarioPartitionSizes(const Scenario& sc, const DataPlan& plan) {
  // The labels are all a partition depends on: the samples stay on disk.
  return PartitionPlanSizes(plan, ScenarioPartition(sc));
}

const std::string& DefaultScenarioText() {
  static const std::string text(kDefaultText);
  return text;
}

Result<Scenario> ParseScenario(const std::string& toml_text, const std::vector<std::string>& overrides,
                               const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
      << e.description();
    return Status::InvalidArgument(m.str());
  }
  for (const auto& o : overrides) EDGEBED_RETURN_IF_ERROR(ApplyOverride(root, o));
  Scenario s;
  Reader r(root);
  Status st = Read(r, root, &s);
  if (!st.ok()) return Status::InvalidArgument(source_name + ": " + st.message());
  return s;
}

Result<Scenario> LoadScenario(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read scenario file " + path);
  std::stringstream buf;
  buf << in.rdbuf();
  try {  // a file with no field at all is a mistake (a wrong file, a cut copy), not the default
    if (toml::parse(buf.str(), path).empty())
      return Status::InvalidArgument(path + " holds no fields; for the built-in default scenario give no file");
  } catch (const toml::parse_error&) {  // ParseScenario reports it with line and column
  }
  return ParseScenario(buf.str(), overrides, path);
}

std::string Scenario::ToToml() const {
  toml::table t;
  Scenario copy = *this;
  Writer w(&t);
  (void)Fields(w, &copy);  // writes every declared field; it checks nothing
  if (!custom_profiles.empty()) {
    toml::table profiles_tbl;
    for (const auto& [name, p] : custom_profiles)
      profiles_tbl.insert(name, toml::table{{"train_gflops", p.train_gflops}, {"memory_mb", p.memory_mb},
                                            {"uplink_bps", p.uplink_bps}, {"downlink_bps", p.downlink_bps},
                                            {"tx_power_w", p.tx_power_w}, {"compute_power_w", p.compute_power_w},
                                            {"ms_per_sample", p.ms_per_sample}});
    t.insert("profiles", profiles_tbl);
  }
  toml::array bw_arr, crash_arr, corrupt_arr;
  for (const auto& p : split.bandwidth) bw_arr.push_back(toml::table{{"t_s", p.t_s}, {"kbps", p.kbps}});
  if (!bw_arr.empty()) t.get_as<toml::table>("split")->insert("bandwidth", bw_arr);
  for (const auto& c : crashes) crash_arr.push_back(toml::table{{"node", int64_t{c.node}}, {"round", int64_t{c.round}}});
  for (const auto& c : corrupt)
    corrupt_arr.push_back(toml::table{{"node", int64_t{c.node}}, {"kind", c.kind}, {"factor", c.factor},
                                      {"std", c.std}, {"from_round", int64_t{c.from_round}}});
  toml::table faults;
  if (!crash_arr.empty()) faults.insert("crash", crash_arr);
  if (!corrupt_arr.empty()) faults.insert("corrupt", corrupt_arr);
  if (!faults.empty()) t.insert("faults", faults);
  std::ostringstream out;
  out << t << "\n";
  return out.str();
}

}  // namespace edgebed
