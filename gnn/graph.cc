#include "gnn/graph.h"

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/visitors.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "gnn/gnn_model.h"

namespace edgebed {

double Graph::EdgeHomophily() const {
  uint64_t same = 0, all = 0;
  for (uint32_t v = 0; v < num_vertices(); ++v)
    for (uint64_t e = offsets[v]; e < offsets[v + 1]; ++e, ++all) same += labels[v] == labels[targets[e]];
  return all ? static_cast<double>(same) / all : 0.0;
}

Graph MakeGraph(uint32_t n, std::vector<std::pair<uint32_t, uint32_t>> edges) {
  std::vector<std::pair<uint32_t, uint32_t>> both;
  both.reserve(edges.size() * 2);
  for (auto [u, v] : edges) {
    if (u == v || u >= n || v >= n) continue;
    both.emplace_back(u, v);
    both.emplace_back(v, u);
  }
  std::sort(both.begin(), both.end());
  both.erase(std::unique(both.begin(), both.end()), both.end());
  Graph g;
  g.csr = CsrGraph(boost::edges_are_sorted, both.begin(), both.end(), n);
  g.offsets.assign(n + 1, 0);
  g.targets.reserve(both.size());
  for (uint32_t v = 0; v < n; ++v) {
    g.offsets[v] = g.targets.size();
    auto [e, end] = boost::out_edges(static_cast<CsrGraph::vertex_descriptor>(v), g.csr);
    for (; e != end; ++e) g.targets.push_back(static_cast<uint32_t>(boost::target(*e, g.csr)));
  }
  g.offsets[n] = g.targets.size();
  return g;
}

void SplitVertices(Graph* g, double train_fraction, double val_fraction, Rng& rng) {
  const uint32_t n = g->num_vertices();
  std::vector<uint32_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0u);
  std::shuffle(perm.begin(), perm.end(), rng);
  const auto n_train = static_cast<uint32_t>(std::lround(train_fraction * n));
  const auto n_val = static_cast<uint32_t>(std::lround(val_fraction * n));
  g->split.assign(n, VertexSplit::kTest);
  for (uint32_t i = 0; i < n; ++i)
    g->split[perm[i]] = i < n_train ? VertexSplit::kTrain : i < n_train + n_val ? VertexSplit::kVal : VertexSplit::kTest;
}

namespace {

// Appends the Bernoulli(p) entries of an rows x cols grid (only j > i when `upper`), skipping
// geometrically so the cost follows the number of edges, not of pairs.
void SampleBlock(uint32_t row0, uint32_t rows, uint32_t col0, uint32_t cols, bool upper, double p, Rng& rng,
                 std::vector<std::pair<uint32_t, uint32_t>>* out) {
  if (p <= 0.0) return;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const uint64_t total = static_cast<uint64_t>(rows) * cols;
  const double log_q = p < 1.0 ? std::log1p(-p) : -1e300;
  for (uint64_t k = 0;; ++k) {
    if (p < 1.0) k += static_cast<uint64_t>(std::floor(std::log(1.0 - u(rng)) / log_q));
    if (k >= total) break;
    const auto i = static_cast<uint32_t>(k / cols), j = static_cast<uint32_t>(k % cols);
    if (upper && j <= i) continue;
    out->emplace_back(row0 + i, col0 + j);
  }
}

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

double CsbmFeatureBayesAccuracy(uint32_t classes, double snr) {
  double sum = 0.0;
  const double h = 1e-3;
  for (double t = -12.0; t <= 12.0; t += h)
    sum += std::exp(-0.5 * t * t) / std::sqrt(2.0 * M_PI) * std::pow(NormalCdf(t + snr), classes - 1.0) * h;
  return sum;
}

Result<Graph> MakeCsbm(const GraphConfig& c, Rng& rng) {
  if (c.classes < 2 || c.vertices < 2 * c.classes)
    return Status::InvalidArgument("gnn.graph: csbm needs classes >= 2 and vertices >= 2 x classes");
  if (c.features < c.classes)
    return Status::InvalidArgument("gnn.graph.features = " + std::to_string(c.features) + " must be >= gnn.graph.classes = " +
                                   std::to_string(c.classes) + " for csbm (class means are basis vectors)");
  const uint32_t n = c.vertices, k = c.classes;
  std::vector<uint32_t> start(k + 1);
  for (uint32_t i = 0; i <= k; ++i) start[i] = static_cast<uint32_t>(static_cast<uint64_t>(n) * i / k);
  const double m = static_cast<double>(n) / k;
  const double p_in = std::min(1.0, c.avg_degree * c.homophily / std::max(1.0, m - 1.0));
  const double p_out = std::min(1.0, c.avg_degree * (1.0 - c.homophily) / std::max(1.0, n - m));
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t a = 0; a < k; ++a)
    for (uint32_t b = a; b < k; ++b)
      SampleBlock(start[a], start[a + 1] - start[a], start[b], start[b + 1] - start[b], a == b, a == b ? p_in : p_out,
                  rng, &edges);
  // Block order is an artefact of the sampler: relabel the vertices by a random permutation.
  std::vector<uint32_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0u);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (auto& [u, v] : edges) u = perm[u], v = perm[v];
  Graph g = MakeGraph(n, std::move(edges));
  g.num_classes = k;
  g.feature_dim = c.features;
  g.labels.resize(n);
  for (uint32_t a = 0; a < k; ++a)
    for (uint32_t i = start[a]; i < start[a + 1]; ++i) g.labels[perm[i]] = a;
  std::normal_distribution<float> noise(0.0f, 1.0f);
  g.features.resize(static_cast<size_t>(n) * c.features);
  for (uint32_t v = 0; v < n; ++v) {
    float* x = &g.features[static_cast<size_t>(v) * c.features];
    for (uint32_t f = 0; f < c.features; ++f) x[f] = noise(rng);
    x[g.labels[v]] += static_cast<float>(c.feature_snr);
  }
  g.feature_bayes_accuracy = CsbmFeatureBayesAccuracy(k, c.feature_snr);
  char buf[256];
  std::snprintf(buf, sizeof buf, "csbm: %u vertices, %llu edges, %u classes, %u features, p_in %.4g, p_out %.4g, "
                "homophily %.3f, feature-only Bayes accuracy %.4f", n, static_cast<unsigned long long>(g.num_edges()), k,
                c.features, p_in, p_out, g.EdgeHomophily(), g.feature_bayes_accuracy);
  g.description = buf;
  return g;
}

Result<Graph> ReadEdgeList(const GraphConfig& c, Rng& rng) {
  std::ifstream el(c.edges);
  if (!el) return Status::NotFound("gnn.graph.edges: cannot read '" + c.edges + "'");
  std::ifstream lf(c.labels);
  if (!lf) return Status::NotFound("gnn.graph.labels: cannot read '" + c.labels + "' (edgelist graphs need labels)");
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  uint32_t n = 0;
  size_t line_no = 0;
  for (std::string line; std::getline(el, line);) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    long long u, v;
    if (!(ss >> u >> v) || u < 0 || v < 0 || u > 100000000 || v > 100000000)
      return Status::InvalidArgument("gnn.graph.edges: line " + std::to_string(line_no) + " of " + c.edges +
                                     " is not two vertex ids in [0, 1e8]: '" + line + "'");
    edges.emplace_back(static_cast<uint32_t>(u), static_cast<uint32_t>(v));
    n = std::max<uint32_t>(n, static_cast<uint32_t>(std::max(u, v)) + 1);
  }
  std::vector<int64_t> labels;
  std::vector<bool> seen;
  line_no = 0;
  for (std::string line; std::getline(lf, line);) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    long long v, y;
    if (!(ss >> v >> y) || v < 0 || v > 100000000 || y < 0 || y > 100000)
      return Status::InvalidArgument("gnn.graph.labels: line " + std::to_string(line_no) + " of " + c.labels +
                                     " is not 'vertex label' with vertex in [0, 1e8] and label in [0, 1e5]");
    if (static_cast<size_t>(v) >= labels.size()) labels.resize(v + 1, -1);
    labels[v] = y;
  }
  n = std::max<uint32_t>(n, static_cast<uint32_t>(labels.size()));
  labels.resize(n, -1);
  for (uint32_t v = 0; v < n; ++v)
    if (labels[v] < 0) return Status::InvalidArgument("gnn.graph.labels: vertex " + std::to_string(v) + " has no label");
  Graph g = MakeGraph(n, std::move(edges));
  g.labels = std::move(labels);
  g.num_classes = static_cast<uint32_t>(*std::max_element(g.labels.begin(), g.labels.end()) + 1);
  if (!c.features_file.empty()) {
    std::ifstream ff(c.features_file);
    if (!ff) return Status::NotFound("gnn.graph.features_file: cannot read '" + c.features_file + "'");
    uint32_t rows = 0;
    for (std::string line; std::getline(ff, line) && rows <= n;) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<float> row;
      std::istringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) row.push_back(std::stof(cell));
      if (rows == 0) g.feature_dim = static_cast<uint32_t>(row.size());
      if (row.size() != g.feature_dim || row.empty())
        return Status::InvalidArgument("gnn.graph.features_file: row " + std::to_string(rows) + " has " +
                                       std::to_string(row.size()) + " values, the first row has " + std::to_string(g.feature_dim));
      g.features.insert(g.features.end(), row.begin(), row.end());
      ++rows;
    }
    if (rows != n)
      return Status::InvalidArgument("gnn.graph.features_file: " + std::to_string(rows) + " rows for " + std::to_string(n) +
                                     " vertices");
  } else {  // a random sketch of the adjacency: X = A R
    g.feature_dim = c.features;
    std::normal_distribution<float> gauss(0.0f, 1.0f / std::sqrt(static_cast<float>(c.features)));
    std::vector<float> r(static_cast<size_t>(n) * c.features);
    for (auto& x : r) x = gauss(rng);
    g.features.assign(static_cast<size_t>(n) * c.features, 0.0f);
    for (uint32_t v = 0; v < n; ++v)
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e)
        for (uint32_t f = 0; f < c.features; ++f)
          g.features[static_cast<size_t>(v) * c.features + f] += r[static_cast<size_t>(g.targets[e]) * c.features + f];
  }
  g.description = "edgelist " + c.edges + ": " + std::to_string(n) + " vertices, " + std::to_string(g.num_edges()) +
                  " edges, " + std::to_string(g.num_classes) + " classes, " + std::to_string(g.feature_dim) + " features";
  return g;
}

Status WriteEdgeList(const Graph& g, const std::string& prefix) {
  std::ofstream e(prefix + ".edges"), l(prefix + ".labels"), f(prefix + ".features");
  if (!e || !l || !f) return Status::IoError("cannot write " + prefix + ".{edges,labels,features}");
  e << "# " << g.description << "\n";
  for (uint32_t v = 0; v < g.num_vertices(); ++v)
    for (uint64_t k = g.offsets[v]; k < g.offsets[v + 1]; ++k)
      if (v < g.targets[k]) e << v << ' ' << g.targets[k] << '\n';
  for (uint32_t v = 0; v < g.num_vertices(); ++v) {
    l << v << ' ' << g.labels[v] << '\n';
    for (uint32_t j = 0; j < g.feature_dim; ++j)
      f << (j ? "," : "") << g.features[static_cast<size_t>(v) * g.feature_dim + j];
    f << '\n';
  }
  return Status::Ok();
}

Result<Graph> LoadGraph(const GnnConfig& c, const std::string& data_dir) {
  Rng rng = MakeRng(c.seed, "gnn-graph");
  Result<Graph> g = c.graph.kind == "csbm"  ? MakeCsbm(c.graph, rng)
                    : c.graph.kind == "knn" ? MakeKnnGraph(c.graph, data_dir, rng)
                    : c.graph.kind == "edgelist"
                        ? ReadEdgeList(c.graph, rng)
                        : Result<Graph>(Status::InvalidArgument("gnn.graph.kind = '" + c.graph.kind +
                                                                "': allowed csbm, knn, edgelist"));
  if (!g.ok()) return g;
  Rng split_rng = MakeRng(c.seed, "gnn-split");
  SplitVertices(&g.value(), c.graph.train_fraction, c.graph.val_fraction, split_rng);
  return g;
}

// ---- partitioning ----------------------------------------------------------------------------
Result<std::vector<uint32_t>> PartitionGraph(const Graph& g, uint32_t parts, const std::string& method, Rng& rng) {
  const uint32_t n = g.num_vertices();
  if (parts == 0 || parts > n)
    return Status::InvalidArgument("partition into " + std::to_string(parts) + " parts: allowed 1.." + std::to_string(n));
  constexpr uint32_t kNone = ~0u;
  std::vector<uint32_t> part(n, kNone);
  if (method == "random") {
    std::vector<uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0u);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (uint32_t i = 0; i < n; ++i) part[perm[i]] = static_cast<uint32_t>(static_cast<uint64_t>(i) * parts / n);
    return part;
  }
  if (method != "bfs") return Status::InvalidArgument("gnn.partitioner = '" + method + "': allowed bfs, random");
  std::vector<uint32_t> dist(n);
  std::vector<uint32_t> queue;
  queue.reserve(n);
  uint32_t next_free = 0;  // lowest id that may be unassigned
  for (uint32_t p = 0; p < parts; ++p) {
    const uint32_t target = static_cast<uint32_t>(static_cast<uint64_t>(n) * (p + 1) / parts) -
                            static_cast<uint32_t>(static_cast<uint64_t>(n) * p / parts);
    while (next_free < n && part[next_free] != kNone) ++next_free;
    // Pseudo-peripheral seed: the unassigned vertex farthest (BFS hops) from the first unassigned one.
    std::fill(dist.begin(), dist.end(), kNone);
    dist[next_free] = 0;
    boost::breadth_first_search(
        g.csr, next_free,
        boost::visitor(boost::make_bfs_visitor(boost::record_distances(dist.data(), boost::on_tree_edge()))));
    uint32_t seed = next_free;
    for (uint32_t v = next_free; v < n; ++v)
      if (part[v] == kNone && dist[v] != kNone && dist[v] > dist[seed]) seed = v;
    uint32_t size = 0;
    queue.clear();
    size_t head = 0;
    auto take = [&](uint32_t v) {
      part[v] = p;
      ++size;
      queue.push_back(v);
    };
    take(seed);
    while (size < target) {
      if (head == queue.size()) {  // the component is used up: start again from another vertex
        while (next_free < n && part[next_free] != kNone) ++next_free;
        take(next_free);
        continue;
      }
      const uint32_t v = queue[head++];
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1] && size < target; ++e)
        if (part[g.targets[e]] == kNone) take(g.targets[e]);
    }
  }
  // Refinement: move a boundary vertex to the part holding most of its neighbours while that
  // lowers the cut and keeps every part within 2% of n / parts.
  std::vector<uint32_t> sizes(parts, 0);
  for (uint32_t v = 0; v < n; ++v) ++sizes[part[v]];
  const double ideal = static_cast<double>(n) / parts;
  const auto max_size = static_cast<uint32_t>(std::ceil(ideal * 1.02)), min_size = static_cast<uint32_t>(std::floor(ideal * 0.98));
  std::vector<uint32_t> count(parts, 0);
  for (int pass = 0; pass < 8; ++pass) {
    uint64_t moved = 0;
    for (uint32_t v = 0; v < n; ++v) {
      std::fill(count.begin(), count.end(), 0u);
      for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) ++count[part[g.targets[e]]];
      const uint32_t own = part[v];
      uint32_t best = own;
      for (uint32_t q = 0; q < parts; ++q)
        if (count[q] > count[best] && sizes[q] < max_size) best = q;
      if (best != own && sizes[own] > min_size) {
        part[v] = best;
        --sizes[own];
        ++sizes[best];
        ++moved;
      }
    }
    if (moved == 0) break;
  }
  return part;
}

uint64_t EdgeCut(const Graph& g, const std::vector<uint32_t>& part) {
  uint64_t cut = 0;
  for (uint32_t v = 0; v < g.num_vertices(); ++v)
    for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) cut += part[v] != part[g.targets[e]];
  return cut / 2;
}

std::vector<std::vector<uint32_t>> PartMembers(const std::vector<uint32_t>& part, uint32_t parts) {
  std::vector<std::vector<uint32_t>> m(parts);
  for (uint32_t v = 0; v < part.size(); ++v) m[part[v]].push_back(v);
  return m;
}

uint64_t HaloVertices(const Graph& g, const std::vector<uint32_t>& part, uint32_t parts) {
  uint64_t halo = 0;
  std::vector<uint32_t> mark(g.num_vertices(), ~0u);
  for (uint32_t p = 0; p < parts; ++p)
    for (uint32_t v = 0; v < g.num_vertices(); ++v)
      if (part[v] == p)
        for (uint64_t e = g.offsets[v]; e < g.offsets[v + 1]; ++e) {
          const uint32_t u = g.targets[e];
          if (part[u] != p && mark[u] != p) mark[u] = p, ++halo;
        }
  return halo;
}

}  // namespace edgebed
