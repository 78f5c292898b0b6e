// A whole experiment as one value: loaded from a TOML scenario file (or the embedded default),
// changed by command-line overrides, checked field by field, written back as the resolved scenario.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <map>

#include "channel/byte_link.h"
#include "channel/channel_config.h"
#include "gnn/gnn_config.h"
#include "splitnets/data_files.h"
#include "splitnets/device_profile.h"
#include "splitnets/learner.h"
#include "splitnets/slimmable.h"
#include "codecs/status.h"
#include "scenarios/ota_config.h"
#include "scenarios/split_config.h"

namespace edgebed {

struct CrashFault {
  uint32_t node = 0;   // node index
  uint32_t round = 1;  // the node's process kills itself half way through this round's training
};

// A node that sends corrupted updates (Byzantine fault injection): from `from_round` on it multiplies
// its update by `factor` before quantising or sending it. kind "sign_flip" means factor -1.
struct CorruptFault {
  uint32_t node = 0;
  std::string kind = "sign_flip";  // sign_flip | scale | random (the update replaced by N(0, std^2) noise)
  double factor = -1.0;            // kind = scale: any finite factor, e.g. -5 or 10
  double std = 1.0;                // kind = random: the noise's standard deviation
  uint32_t from_round = 1;
};

struct Scenario {
  std::string name = "default";
  uint64_t seed = 1;
  std::string output_dir = "runs/default";

  std::string model = "cnn";
  TransferConfig transfer;          // [transfer]: backbone "" = no transfer learning
  TorchScriptConfig torchscript;    // model.path, model.loss, model.train_flops (model.name = "torchscript")

  DataSpec data;                    // [data]: format, files, test set, limits, classes, normalisation
  std::string partition = "dirichlet";
  double dirichlet_alpha = 0.5;     // (0, 1e6]
  uint32_t shards_per_node = 2;
  uint32_t min_samples = 10;        // dirichlet: every node at least this many; natural: clients with fewer are left out
  uint32_t samples_per_node = 0;    // sample: rows each node draws with replacement (0 = training rows / nodes)

  uint32_t nodes = 10;
  uint32_t rounds = 20;
  double fraction = 1.0;            // (0, 1]
  double min_quorum = 0.5;          // (0, 1]
  std::string strategy = "fedavg";  // fedavg | fedprox | fedavgm | fedadagrad | fedadam | fedyogi | scaffold | fedbuff
  double proximal_mu = 0.01;        // fedprox: mu of the nodes' proximal term, [0, 1e6]
  double server_lr = 1.0;           // server step size eta (fedavgm, fedadagrad/adam/yogi, fedbuff), (0, 10]
  uint32_t buffer_size = 10;        // fedbuff: updates per server step; ceil(fraction x nodes) nodes train at all times
  std::string staleness = "sqrt";   // fedbuff: an update s steps old weighs 1/sqrt(1+s) (sqrt) or 1 (constant)
  double server_momentum = 0.9;     // fedavgm: beta, [0, 0.999]
  double beta1 = 0.9, beta2 = 0.99; // fedadagrad/adam/yogi moment decays, [0, 0.999]
  double tau = 1e-3;                // fedadagrad/adam/yogi: adaptivity, (0, 1]
  std::string aggregation = "mean"; // mean | median | trimmed_mean | krum | multi_krum | bulyan | norm_bound
  uint32_t byzantine = 0;           // f tolerated (krum, multi_krum, bulyan)
  double trim_fraction = 0.1;       // trimmed_mean: share cut from each end
  uint32_t multi_krum_keep = 0;     // multi_krum: updates averaged; 0 = n - f
  double clip_norm = 0.0;           // norm_bound: the largest update norm kept
  double dp_clip_norm = 0.0;        // DP-FedAvg: each update clipped to this norm; 0 = no DP
  double dp_noise_multiplier = 1.0; // DP-FedAvg: noise std / dp_clip_norm
  double dp_target_epsilon = 0.0;   // > 0: the noise multiplier is chosen to end the run at this epsilon
  double dp_delta = 1e-5;           // the delta epsilon is reported at
  bool dp_adaptive = false;         // adaptive clipping (Andrew et al. 2021): dp_clip_norm is the start
  double dp_target_quantile = 0.5;  // adaptive: the share of updates left unclipped, (0, 1)
  double dp_clip_lr = 0.2;          // adaptive: C <- C exp(-dp_clip_lr (unclipped share - quantile))
  double dp_count_noise_std = 0.0;  // adaptive: noise on the unclipped count; 0 = expected nodes / 20
  std::string selection = "random"; // random | deadline | channel
  double over_commit = 0.0;         // select ceil(K (1 + over_commit)); aggregate the first K updates
  uint32_t evaluate_every = 0;      // every N rounds the participants evaluate the new model on their data; 0 = never

  uint32_t local_epochs = 1;
  uint32_t batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.5;
  std::string optimizer = "sgd";    // sgd | adam
  double weight_decay = 0.0;

  std::string bind = "tcp://127.0.0.1:0";
  double round_deadline_s = 600.0;
  double join_timeout_s = 120.0;
  double liveness_timeout_s = 15.0;
  double virtual_deadline_s = 0.0;  // updates completing later on the virtual clock are stragglers; 0 = none
  double max_frame_mb = 64.0;
  uint32_t server_threads = 2;
  uint32_t max_connections = 4096;          // open node connections in all (within the fd limit)
  uint32_t max_connections_per_peer = 256;  // from one IP address

  ChannelConfig channel;  // [channel]

  // [population]: simulated nodes (the highest indices), hosted by node host processes.
  uint32_t simulated = 0;
  uint32_t hosts = 1;
  std::string profiles = "rpi4";        // ready profiles and shares: "rpi4:0.5,phone:0.3,pi-zero-2:0.2"
  std::string availability = "always"; // always | markov | trace
  double p_off = 0.1, p_on = 0.5;       // markov transition probabilities per round
  std::string trace_file;               // trace: lines "node,round,online"
  std::map<std::string, DeviceProfile> custom_profiles;  // [profiles.NAME] tables

  OtaConfig ota;  // [ota]
  SplitConfig split;  // [split]
  bool is_split() const { return model == "slimsplit"; }
  GnnConfig gnn;  // [gnn], [gnn.graph]: model.name = "gnn" (federation.nodes = gnn.parts, rounds = gnn.epochs)
  bool is_gnn() const { return model == "gnn"; }
  // What one row of metrics.jsonl is: "epoch" (GNN), "step" (FedBuff) or "round".
  const char* round_unit() const { return is_gnn() ? "epoch" : strategy == "fedbuff" ? "step" : "round"; }

  std::vector<CrashFault> crashes;
  std::vector<CorruptFault> corrupt;  // [[faults.corrupt]]

  size_t max_frame_bytes() const { return static_cast<size_t>(max_frame_mb * 1024.0 * 1024.0); }
  std::string ToToml() const;  // the resolved scenario, loadable again
};

// The slimmable split network of [split] (model.name = "slimsplit").
SlimConfig ScenarioSlimConfig(const Scenario& sc);

// The network the scenario trains: model.*, the data's classes (0: regression) and [transfer].
// `plan` gives the classes; null: data.classes, else 10.
ModelSpec ScenarioModel(const Scenario& sc, const DataPlan* plan = nullptr);

// [training] as a node trains: epochs, batch, learning rate, momentum, optimizer, weight decay
// (the per-round seed and the strategy's terms are the caller's).
TrainOptions ScenarioTrainOptions(const Scenario& sc);

// [data] with the scenario's seed (the held-out draw).
DataSpec ScenarioDataSpec(const Scenario& sc);

// The scenario's partition fields for `nodes` nodes.
PartitionSpec ScenarioPartition(const Scenario& sc);

// The scenario's training (train = true) or test set, whole.
Result<Dataset> LoadScenarioData(const Scenario& sc, bool train);

// How many training samples each node holds (the partition every node computes from the same
// fields), from the scenario's data plan. Errors name the field: e.g. Dirichlet with too few samples
// per node.
Result<std::vector<uint64_t>> ScenarioPartitionSizes(const Scenario& sc, const DataPlan& plan);

// The embedded default scenario's text (scenarios/default.toml).
const std::string& DefaultScenarioText();

// Parses TOML text, applies "a.b=value" overrides (value in TOML syntax; bare words are strings),
// and checks every field. Unknown keys are errors (a typo must not silently use a default).
Result<Scenario> ParseScenario(const std::string& toml_text, const std::vector<std::string>& overrides,
                               const std::string& source_name);
Result<Scenario> LoadScenario(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace edgebed
