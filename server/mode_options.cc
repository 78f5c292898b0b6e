#include "server/mode_options.h"

namespace edgebed {

ServerCoreOptions CoreOptions(const Scenario& sc) {
  ServerCoreOptions o;
  o.run_name = sc.name + "-" + std::to_string(sc.seed);
  o.seed = sc.seed;
  o.output_dir = sc.output_dir;
  o.resolved_scenario = sc.ToToml();
  o.link.bind = sc.bind;
  o.link.max_frame_bytes = sc.max_frame_bytes();
  o.link.max_connections = sc.max_connections;
  o.link.max_connections_per_peer = sc.max_connections_per_peer;
  o.rounds = {sc.liveness_timeout_s, sc.round_deadline_s};
  o.nodes = sc.nodes;
  o.last_round = sc.is_gnn() ? sc.gnn.epochs : sc.rounds;
  o.round_name = sc.round_unit();
  o.join_timeout_s = sc.join_timeout_s;
  wire::JoinAck& ack = o.join_ack;
  ack.set_model(sc.model);
  ack.set_dataset(sc.data.format);
  ack.set_partition(sc.partition);
  ack.set_dirichlet_alpha(sc.dirichlet_alpha);
  ack.set_shards_per_node(sc.shards_per_node);
  ack.set_num_nodes(sc.nodes);
  ack.set_seed(sc.seed);
  ack.set_train_limit(sc.data.train_limit);
  ack.set_min_samples(sc.min_samples);
  ack.set_samples_per_node(sc.samples_per_node);
  for (int c : sc.data.classes) ack.add_classes(static_cast<uint32_t>(c));
  return o;
}

OtaReceiverOptions OtaOptions(const Scenario& sc, const DataPlan& plan) {
  OtaReceiverOptions o;
  o.ota = sc.ota;
  o.proxy_training = ScenarioTrainOptions(sc);
  o.data = ScenarioDataSpec(sc);
  o.model = ScenarioModel(sc, &plan);
  o.seed = sc.seed;
  o.nodes = sc.nodes;
  return o;
}

GnnServiceOptions GnnOptions(const Scenario& sc) {
  GnnServiceOptions o;
  o.gnn = sc.gnn;
  o.data_dir = sc.data.dir;
  o.output_dir = sc.output_dir;
  for (const auto& c : sc.crashes) o.crashes.push_back({c.node, c.round});
  return o;
}

SplitServiceOptions SplitOptions(const Scenario& sc) {
  SplitServiceOptions o;
  o.split = sc.split;
  o.slim = ScenarioSlimConfig(sc);
  o.learning_rate = static_cast<float>(sc.learning_rate);
  o.momentum = static_cast<float>(sc.momentum);
  o.batch_size = sc.batch_size;
  o.local_epochs = sc.local_epochs;
  o.channel = sc.channel;
  o.nodes = sc.nodes;
  o.seed = sc.seed;
  o.server_threads = static_cast<int>(sc.server_threads);
  for (const auto& c : sc.crashes) o.crashes.push_back({c.node, c.round});
  return o;
}

}  // namespace edgebed
