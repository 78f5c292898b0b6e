// Deep GNNs in libtorch behind a torch-free API (gnn_model.cc and gnn_shards.cc are gnn/'s libtorch
// translation units): GCN or GraphSAGE layers on a normalised sparse adjacency, each with a residual connection
// and a LayerNorm, between an input and an output linear layer:
//   h_0 = relu(X W_in + b_in);  h_{l+1} = h_l + relu(LN(A h_l W_l + b_l))  (GCN, A = D^-1/2 (A+I) D^-1/2)
//                               h_{l+1} = h_l + relu(LN(h_l S_l + M h_l W_l + b_l))  (SAGE, M = D^-1 A)
//   logits = LN(h_L) W_out + b_out.
// Four ways to train the same network (every parameter drawn from the seed per layer, so each
// process builds exactly its own layers of one network):
//  - full: one process, the whole graph, every layer: the reference.
//  - pipe (GNNPipe): stage s of P holds layers [L s / P, L (s+1) / P) for all vertices; the graph is
//    cut into K chunks that flow forward through the stages and whose gradients flow back. A layer
//    computing chunk c reads its neighbours' inputs from a per-layer table: fresh for chunks already
//    computed this epoch, historical (last epoch's) for the later ones. No gradient flows into a
//    historical or another chunk's row. Staleness is at most one epoch and is reported.
//  - graph (graph parallelism): partition p of P holds its vertices and every layer; before each
//    layer it receives its halo's embeddings from their owners, and in backward sends the halo's
//    gradients back; parameter gradients are summed over the partitions every epoch.
//  - hybrid: P stages x Q partitions, one process each; graph parallelism inside a stage, the
//    partition's rows passed stage to stage (no chunk streaming).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codecs/rng.h"
#include "codecs/status.h"
#include "gnn/gnn_config.h"
#include "gnn/graph.h"

namespace edgebed {

// What crosses between shard processes; every byte is counted by kind.
enum class TensorKind : uint8_t { kEmbedding = 0, kGradient = 1, kParameter = 2, kEval = 3 };
constexpr int kTensorKinds = 4;
const char* TensorKindName(TensorKind k);  // "embedding", "gradient", "parameter", "eval"

struct PeerTensor {
  TensorKind kind = TensorKind::kEmbedding;
  uint32_t epoch = 0;
  uint32_t step = 0;  // pipe: the chunk; graph: the layer
  uint32_t from = 0;  // sender's shard index
  uint32_t rows = 0, dim = 0;
  std::vector<float> values;  // rows x dim
  double arrival_s = 0.0;     // when it reaches the receiver on the virtual clock (set by the transport)
};

// How a shard reaches the others. Receive blocks until the tensor (from, kind, epoch, step) has
// arrived (holding back any other that comes first) or fails with the reason.
class PeerTransport {
 public:
  virtual ~PeerTransport() = default;
  virtual Status Send(uint32_t to, const PeerTensor& t) = 0;
  virtual Status Receive(uint32_t from, TensorKind kind, uint32_t epoch, uint32_t step, PeerTensor* out) = 0;
};

// One shard's share of one epoch.
struct ShardStats {
  double train_loss = 0.0;              // its part of the mean training loss (the shards' figures add up)
  uint64_t train_correct = 0, train_seen = 0;  // from the training forward pass (pipe: with historical inputs)
  bool evaluated = false;
  uint64_t correct[3] = {0, 0, 0}, total[3] = {0, 0, 0};  // evaluation, by VertexSplit
  double test_loss = 0.0;               // its part of the mean test loss
  uint64_t stale_reads = 0, fresh_reads = 0;  // pipe: neighbour reads from the table, by kind
  uint32_t max_staleness = 0;           // pipe: epochs since the oldest historical row read was written
  double stale_diff_sq = 0.0, stale_norm_sq = 0.0;  // pipe: |historical - fresh|^2 and |fresh|^2 over rows read stale
  double train_s = 0.0, eval_s = 0.0;
  double wait_s = 0.0;                  // waiting for peers (set by the transport's owner)
  double virtual_train_s = 0.0;         // the training epoch on the virtual clock (set by the transport's owner)
};

class GnnShard {
 public:
  // Shard `index` of the cfg.mode layout (full: index 0 of 1). Builds the adjacency blocks, the
  // chunks or partition, and this shard's parameters. `g` must outlive the shard.
  static Result<std::unique_ptr<GnnShard>> Create(const Graph& g, const GnnConfig& cfg, uint32_t index);
  virtual ~GnnShard() = default;
  // One training epoch (one optimiser step). `progress` is called with the share done so far.
  virtual Status TrainEpoch(uint32_t epoch, PeerTransport* t, const std::function<void(double)>& progress,
                            ShardStats* st) = 0;
  // A forward pass with fresh embeddings over the whole graph; fills st->correct/total/test_loss.
  virtual Status Evaluate(uint32_t epoch, PeerTransport* t, ShardStats* st) = 0;
  // This shard's parameters, flattened in layer order (tests compare them across layouts).
  virtual std::vector<float> Parameters() const = 0;
  virtual uint64_t NumParameters() const = 0;
  virtual std::string Describe() const = 0;
  // Everything training changes (parameters, the optimiser's moments, GNNPipe's historical tables
  // and when each chunk's rows were written) as bytes, for a checkpoint; LoadState takes them back
  // into a shard built from the same config (an error says what does not fit).
  [[nodiscard]] virtual Result<std::string> SaveState() const = 0;
  [[nodiscard]] virtual Status LoadState(const std::string& state) = 0;
  // pipe: the table row a chunk's layer would read for vertex v right now (tests: historical vs fresh).
  virtual std::vector<float> TableRow(uint32_t local_layer, uint32_t v) const { return {}; }
};

// The chunks (pipe) or partition (graph) of a layout, the same in every process: PartitionGraph
// with cfg.partitioner into cfg.chunks (pipe) or cfg.parts (graph) parts, from the seed.
Result<std::vector<uint32_t>> LayoutPartition(const Graph& g, const GnnConfig& cfg);

// The kNN graph over cfg.vertices Fashion-MNIST training images (a seeded random subset): cosine
// similarity of the pixels, k nearest per image, made undirected; features are the pixels / 255.
Result<Graph> MakeKnnGraph(const GraphConfig& c, const std::string& data_dir, Rng& rng);

// Parameter count of the network a config describes (all shards together).
uint64_t GnnParameterCount(const GnnConfig& cfg, uint32_t feature_dim, uint32_t classes);

// libtorch intra-op threads of this process (n > 0; 0 keeps libtorch's default), and one OpenBLAS
// thread (splitnets/learner.h, SetBlasThreads), so every GNN process computes the same digits.
void SetGnnThreads(int n);

}  // namespace edgebed
