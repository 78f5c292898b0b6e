// What a GNN experiment is: the graph, the model, and how the training is spread over processes.
// Filled from a scenario's [gnn] and [gnn.graph] tables; carried to the shard processes in the
// join_ack (codecs/edgebed.proto, GnnSpec).
#pragma once
#include <cstdint>
#include <string>

#include "gnn/virtual_link.h"

namespace edgebed {

struct GraphConfig {
  std::string kind = "csbm";   // csbm | knn (Fashion-MNIST images) | edgelist (a file)
  uint32_t vertices = 4000;    // csbm, knn: N
  uint32_t classes = 4;        // csbm: C (knn: 10, edgelist: from the labels file)
  uint32_t features = 32;      // csbm: F >= C; edgelist without a features file: random sketch width
  double avg_degree = 10.0;    // csbm: expected degree
  double homophily = 0.7;      // csbm: expected share of a vertex's edges inside its class
  double feature_snr = 1.0;    // csbm: class mean separation / noise std (sets the feature-only Bayes accuracy)
  uint32_t knn_k = 8;          // knn: neighbours per image (the graph is made undirected)
  std::string edges;           // edgelist: "u v" per line, '#' comments
  std::string labels;          // edgelist: "v label" per line
  std::string features_file;   // edgelist, optional: one comma-separated row per vertex
  double train_fraction = 0.2; // random split of the vertices
  double val_fraction = 0.2;
};

struct GnnConfig {
  GraphConfig graph;
  std::string mode = "pipe";   // full (one process, the reference) | pipe (GNNPipe) | graph (graph parallelism)
                               // | hybrid (pipeline stages, each graph-parallel over partitions; no chunks)
  std::string layer = "gcn";   // gcn | sage
  uint32_t layers = 8;         // L message-passing layers (plus an input and an output linear layer)
  uint32_t hidden = 64;        // d, the width of every hidden layer
  uint32_t epochs = 150;
  double learning_rate = 0.003; // Adam
  double weight_decay = 0.0;
  uint32_t parts = 2;          // P: pipeline stages (pipe, hybrid) or graph partitions (graph)
  uint32_t partitions = 2;     // hybrid: graph partitions per stage (parts x partitions processes)
  uint32_t chunks = 4;         // pipe: K graph chunks streamed through the pipeline
  std::string partitioner = "bfs";  // bfs (BFS-grown + boundary refinement) | random
  uint32_t eval_every = 1;     // evaluate (a forward pass with fresh embeddings) every N epochs
  double peer_timeout_s = 60.0;  // a shard waiting this long for a peer's tensor gives up
  uint32_t checkpoint_every = 10;  // server: the shards' state into checkpoint.bin every N epochs (0 = never)
  uint32_t threads = 1;        // libtorch threads per process (the reference too, so epoch times compare)
  // The links between shards on the virtual clock (gnn/virtual_link.h): every epoch reports its
  // time there (virtual_epoch_s) beside the wall clock; 0 Mbit/s = bytes take no time.
  double link_mbps = 0.0;      // each shard's uplink [Mbit/s]
  double link_delay_ms = 0.0;  // one-way latency per tensor [ms]
  VirtualLinkOptions link() const { return {link_mbps, link_delay_ms}; }
  uint64_t seed = 1;
  // Processes of the layout: full 1, pipe and graph `parts`, hybrid parts x partitions.
  uint32_t shards() const { return mode == "full" ? 1 : mode == "hybrid" ? parts * partitions : parts; }
};

}  // namespace edgebed
