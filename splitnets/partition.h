// Which training samples a node holds. Computed identically on every machine from (seed, number of
// nodes, partition kind): a node needs only its index to find its own share.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct PartitionSpec {
  std::string kind = "iid";   // iid | dirichlet | shards | natural (one node per client id) | sample
  double alpha = 0.5;         // Dirichlet concentration, > 0: small = strong label skew
  uint32_t shards_per_node = 2;
  uint32_t num_nodes = 1;
  uint64_t seed = 1;
  uint32_t min_samples = 10;  // Dirichlet redraws until every node has at least this many; natural
                              // takes only clients holding at least this many
  uint32_t samples_per_node = 0;  // sample: draws per node (0 = samples / nodes, at least 1)
};

// Sample indices of every node (sorted ascending within each node). Errors name the field.
// sample (FedScale-style, for more nodes than samples): node k draws samples_per_node indices
// uniformly with replacement from its own generator (seed, k), so nodes share samples and a node
// may hold one twice; its draw does not depend on the other nodes or on how many there are.
// natural: `client_ids` (one per sample) groups the samples; the clients with at least min_samples
// are drawn in a seeded order and node k takes all the rows of the k-th (LEAF / FEMNIST style).
Result<std::vector<std::vector<uint32_t>>> PartitionAll(const std::vector<int32_t>& labels, int num_classes,
                                                        const PartitionSpec& spec,
                                                        const std::vector<int64_t>& client_ids = {});
// sample: how many indices each node draws from `num_samples` (the same for every node).
Result<uint64_t> SampleDrawsPerNode(size_t num_samples, const PartitionSpec& spec);
// One node's share of PartitionAll.
Result<std::vector<uint32_t>> PartitionFor(const std::vector<int32_t>& labels, int num_classes,
                                           const PartitionSpec& spec, uint32_t node_index);

}  // namespace edgebed
