// Graphs for GNN training, stored on Boost.Graph (a compressed sparse row graph holding both
// directions of every undirected edge), with vertex features, labels and a train/val/test split.
// Generators: the contextual stochastic block model (CSBM) and kNN over Fashion-MNIST images
// (gnn_model.cc, it needs libtorch); an edge-list reader; a partitioner into balanced parts.
#pragma once
#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/rng.h"
#include "codecs/status.h"
#include "gnn/gnn_config.h"

namespace edgebed {

using CsrGraph = boost::compressed_sparse_row_graph<boost::directedS>;

enum class VertexSplit : uint8_t { kTrain = 0, kVal = 1, kTest = 2 };

struct Graph {
  CsrGraph csr;                   // both directions of each undirected edge, no self loops, no duplicates
  uint32_t num_classes = 0;
  uint32_t feature_dim = 0;
  std::vector<float> features;    // N x feature_dim, row-major
  std::vector<int64_t> labels;    // N, in [0, num_classes)
  std::vector<VertexSplit> split; // N
  std::string description;        // one line: kind, N, edges, ...
  double feature_bayes_accuracy = -1.0;  // csbm: the Bayes-optimal accuracy from features alone; -1 = unknown

  uint32_t num_vertices() const { return static_cast<uint32_t>(boost::num_vertices(csr)); }
  uint64_t num_edges() const { return boost::num_edges(csr) / 2; }  // undirected
  // CSR arrays: neighbours of v are targets[offsets[v] .. offsets[v+1]), ascending.
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> targets;
  // The share of edges whose ends have the same label.
  double EdgeHomophily() const;
};

// Builds the graph from undirected edges (either direction, duplicates and self loops dropped).
Graph MakeGraph(uint32_t n, std::vector<std::pair<uint32_t, uint32_t>> edges);

// Assigns the train/val/test split: a seeded random permutation, the first train_fraction of it
// train, the next val_fraction validation, the rest test.
void SplitVertices(Graph* g, double train_fraction, double val_fraction, Rng& rng);

// CSBM: C balanced classes; an edge joins two vertices with probability p_in inside a class and
// p_out across, chosen so that the expected degree is avg_degree and the expected share of
// intra-class edges is homophily; features x_v = s e_{y_v} + N(0, I_F) with s = feature_snr.
Result<Graph> MakeCsbm(const GraphConfig& c, Rng& rng);

// The Bayes-optimal accuracy of classifying x = s e_y + N(0, I) among C classes from x alone:
// P(correct) = integral phi(t) Phi(t + s)^(C-1) dt (numerical quadrature).
double CsbmFeatureBayesAccuracy(uint32_t classes, double snr);

// Reads an edge list ("u v" per line, '#' comments), a labels file ("v label" per line) and, if
// given, a features file (one comma-separated row per vertex). Without features, each vertex gets a
// seeded random sketch of its adjacency row (A R, R Gaussian N x F / sqrt(F)).
Result<Graph> ReadEdgeList(const GraphConfig& c, Rng& rng);
// Writes g as files ReadEdgeList reads back: <prefix>.edges, <prefix>.labels, <prefix>.features.
Status WriteEdgeList(const Graph& g, const std::string& prefix);

// The scenario's graph: csbm, knn or edgelist, split into train/val/test, all from seed.
Result<Graph> LoadGraph(const GnnConfig& c, const std::string& data_dir);

// A partition of the vertices into `parts` balanced parts (sizes differ by at most 1 before
// refinement, by at most 2% after). "bfs": parts grown one after another by breadth-first search
// from a pseudo-peripheral unassigned vertex (found with boost::breadth_first_search), then passes
// of greedy boundary moves that lower the edge cut; "random": a seeded random assignment.
Result<std::vector<uint32_t>> PartitionGraph(const Graph& g, uint32_t parts, const std::string& method, Rng& rng);
// Undirected edges whose ends are in different parts.
uint64_t EdgeCut(const Graph& g, const std::vector<uint32_t>& part);
// The vertices of each part, ascending.
std::vector<std::vector<uint32_t>> PartMembers(const std::vector<uint32_t>& part, uint32_t parts);
// Sum over parts of the vertices outside the part adjacent to it (the halo each part must receive
// every layer in graph parallelism): the |boundary| of the analytic count 2 L |boundary| d.
uint64_t HaloVertices(const Graph& g, const std::vector<uint32_t>& part, uint32_t parts);

}  // namespace edgebed
