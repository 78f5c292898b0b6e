#include "splitnets/partition.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "codecs/rng.h"

namespace edgebed {
namespace {

using Parts = std::vector<std::vector<uint32_t>>;

Parts Iid(size_t n, const PartitionSpec& spec, Rng& rng) {
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  std::shuffle(idx.begin(), idx.end(), rng);
  Parts parts(spec.num_nodes);
  for (size_t k = 0; k < spec.num_nodes; ++k) {
    const size_t lo = n * k / spec.num_nodes, hi = n * (k + 1) / spec.num_nodes;
    parts[k].assign(idx.begin() + static_cast<std::ptrdiff_t>(lo), idx.begin() + static_cast<std::ptrdiff_t>(hi));
  }
  return parts;
}

// Label skew: for each class, node shares drawn from Dirichlet(alpha, ..., alpha).
Result<Parts> Dirichlet(const std::vector<int32_t>& labels, int num_classes, const PartitionSpec& spec,
                        Rng& rng) {
  std::vector<std::vector<uint32_t>> by_class(static_cast<size_t>(num_classes));
  for (uint32_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  std::gamma_distribution<double> gamma(spec.alpha, 1.0);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Parts parts(spec.num_nodes);
    for (auto& cls : by_class) {
      std::vector<uint32_t> c = cls;
      std::shuffle(c.begin(), c.end(), rng);
      std::vector<double> p(spec.num_nodes);
      double sum = 0.0;
      for (auto& x : p) sum += (x = gamma(rng));
      double cum = 0.0;
      size_t lo = 0;
      for (size_t k = 0; k < spec.num_nodes; ++k) {
        cum += p[k] / sum;
        const size_t hi = (k + 1 == spec.num_nodes) ? c.size()
                                                    : std::min(c.size(), static_cast<size_t>(cum * c.size()));
        parts[k].insert(parts[k].end(), c.begin() + static_cast<std::ptrdiff_t>(lo),
                        c.begin() + static_cast<std::ptrdiff_t>(std::max(lo, hi)));
        lo = std::max(lo, hi);
      }
    }
    const size_t smallest = std::min_element(parts.begin(), parts.end(), [](auto& a, auto& b) {
                              return a.size() < b.size();
                            })->size();
    if (smallest >= spec.min_samples) return parts;
  }
  return Status::InvalidArgument("data.alpha = " + std::to_string(spec.alpha) + " with " +
                                 std::to_string(spec.num_nodes) + " nodes leaves some node with fewer than " +
                                 std::to_string(spec.min_samples) + " samples after 1000 draws; raise alpha or use fewer nodes");
}

// Pathological non-IID (McMahan et al.): sort by label, cut into equal shards, deal them out.
Result<Parts> Shards(const std::vector<int32_t>& labels, const PartitionSpec& spec, Rng& rng) {
  const size_t num_shards = static_cast<size_t>(spec.num_nodes) * spec.shards_per_node;
  if (num_shards > labels.size())
    return Status::InvalidArgument("data.shards_per_node = " + std::to_string(spec.shards_per_node) +
                                   " gives more shards than samples (" + std::to_string(labels.size()) + ")");
  std::vector<uint32_t> idx(labels.size());
  std::iota(idx.begin(), idx.end(), 0u);
  std::shuffle(idx.begin(), idx.end(), rng);
  std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) { return labels[a] < labels[b]; });
  std::vector<size_t> shard_ids(num_shards);
  std::iota(shard_ids.begin(), shard_ids.end(), size_t{0});
  std::shuffle(shard_ids.begin(), shard_ids.end(), rng);
  Parts parts(spec.num_nodes);
  for (size_t s = 0; s < num_shards; ++s) {
    const size_t id = shard_ids[s];
    const size_t lo = idx.size() * id / num_shards, hi = idx.size() * (id + 1) / num_shards;
    auto& part = parts[s / spec.shards_per_node];
    part.insert(part.end(), idx.begin() + static_cast<std::ptrdiff_t>(lo), idx.begin() + static_cast<std::ptrdiff_t>(hi));
  }
  return parts;
}

// One node per client id: the clients holding at least min_samples rows, in a seeded order.
Result<Parts> Natural(const std::vector<int64_t>& clients, const PartitionSpec& spec, Rng& rng) {
  std::map<int64_t, std::vector<uint32_t>> by_client;
  for (uint32_t i = 0; i < clients.size(); ++i) by_client[clients[i]].push_back(i);
  Parts eligible;
  for (auto& [id, rows] : by_client)
    if (rows.size() >= spec.min_samples) eligible.push_back(std::move(rows));
  if (eligible.size() < spec.num_nodes)
    return Status::InvalidArgument("data.partition = natural: federation.nodes = " + std::to_string(spec.num_nodes) + " but only " +
                                   std::to_string(eligible.size()) + " of the " + std::to_string(by_client.size()) +
                                   " client ids hold at least data.min_samples = " + std::to_string(spec.min_samples) +
                                   " rows; use at most " + std::to_string(eligible.size()) + " nodes or lower data.min_samples");
  std::shuffle(eligible.begin(), eligible.end(), rng);
  eligible.resize(spec.num_nodes);
  return eligible;
}

// With replacement: each node its own seeded draws.
Result<Parts> Sample(size_t n, const PartitionSpec& spec) {
  EDGEBED_ASSIGN_OR_RETURN(const uint64_t m, SampleDrawsPerNode(n, spec));
  Parts parts(spec.num_nodes);
  for (uint32_t k = 0; k < spec.num_nodes; ++k) {
    Rng rng = MakeRng(spec.seed, "partition-sample", k);
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(n - 1));
    parts[k].resize(m);
    for (auto& i : parts[k]) i = pick(rng);
  }
  return parts;
}

}  // namespace

Result<uint64_t> SampleDrawsPerNode(size_t num_samples, const PartitionSpec& spec) {
  if (spec.num_nodes == 0) return Status::InvalidArgument("federation.nodes must be >= 1");
  if (num_samples == 0) return Status::InvalidArgument("the training set is empty");
  const uint64_t m = spec.samples_per_node ? spec.samples_per_node : std::max<uint64_t>(1, num_samples / spec.num_nodes);
  if (m * spec.num_nodes > (uint64_t{1} << 31))
    return Status::InvalidArgument("data.partition = sample: " + std::to_string(spec.num_nodes) + " nodes x " +
                                   std::to_string(m) + " data.samples_per_node = " + std::to_string(m * spec.num_nodes) +
                                   " draws; allowed up to 2^31 (lower data.samples_per_node)");
  return m;
}

Result<std::vector<std::vector<uint32_t>>> PartitionAll(const std::vector<int32_t>& labels, int num_classes,
                                                        const PartitionSpec& spec,
                                                        const std::vector<int64_t>& client_ids) {
  if (spec.num_nodes == 0) return Status::InvalidArgument("federation.nodes must be >= 1");
  if (labels.empty()) return Status::InvalidArgument("the training set is empty");
  if (labels.size() < spec.num_nodes && spec.kind != "sample")
    return Status::InvalidArgument("federation.nodes = " + std::to_string(spec.num_nodes) +
                                   " exceeds the " + std::to_string(labels.size()) +
                                   " training samples; data.partition = sample lets nodes share samples");
  Rng rng = MakeRng(spec.seed, "partition", spec.num_nodes);
  Result<Parts> parts = Parts{};
  if (spec.kind == "iid") {
    parts = Iid(labels.size(), spec, rng);
  } else if (spec.kind == "dirichlet") {
    if (!(spec.alpha > 0)) return Status::InvalidArgument("data.alpha must be > 0");
    if (labels.size() < static_cast<size_t>(spec.num_nodes) * spec.min_samples)
      return Status::InvalidArgument("data.partition = dirichlet: " + std::to_string(labels.size()) + " training samples over " +
                                     std::to_string(spec.num_nodes) + " nodes is " +
                                     std::to_string(labels.size() / spec.num_nodes) + " per node on average, and every node needs at least " +
                                     std::to_string(spec.min_samples) + "; use fewer federation.nodes (at most " +
                                     std::to_string(labels.size() / spec.min_samples) + "), more data, or data.partition = iid");
    parts = Dirichlet(labels, num_classes, spec, rng);
  } else if (spec.kind == "shards") {
    if (spec.shards_per_node == 0) return Status::InvalidArgument("data.shards_per_node must be >= 1");
    parts = Shards(labels, spec, rng);
  } else if (spec.kind == "sample") {
    parts = Sample(labels.size(), spec);
  } else if (spec.kind == "natural") {
    if (client_ids.size() != labels.size())
      return Status::InvalidArgument("data.partition = natural needs one client id per training sample (npz array client_id)");
    parts = Natural(client_ids, spec, rng);
  } else {
    return Status::InvalidArgument("data.partition = '" + spec.kind + "' is unknown; allowed: iid, dirichlet, shards, natural, sample");
  }
  if (!parts.ok()) return parts.status();
  for (auto& p : parts.value()) std::sort(p.begin(), p.end());
  return std::move(parts).value();
}

Result<std::vector<uint32_t>> PartitionFor(const std::vector<int32_t>& labels, int num_classes,
                                           const PartitionSpec& spec, uint32_t node_index) {
  if (node_index >= spec.num_nodes)
    return Status::InvalidArgument("node index " + std::to_string(node_index) + " is out of range [0, " +
                                   std::to_string(spec.num_nodes - 1) + "]");
  auto all = PartitionAll(labels, num_classes, spec);
  if (!all.ok()) return all.status();
  return std::move(all.value()[node_index]);
}

}  // namespace edgebed
