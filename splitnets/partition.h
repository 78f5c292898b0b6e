// Which training samples a node holds. Computed identically on every machine from (seed, number of
// nodes, partition kind): a node needs only its index to find its own share.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct PartitionSpec {
  std::string kind = "iid";   // iid | dirichlet | shards | natural (one node per client id)
  double alpha = 0.5;         // Dirichlet concentration, > 0: small = strong label skew
  uint32_t shards_per_node = 2;
  uint32_t num_nodes = 1;
  uint64_t seed = 1;
  uint32_t min_samples = 10;  // Dirichlet redraws until every node has at least this many; natural
                              // takes only clients holding at least this many
};

// Sample indices of every node (sorted ascending within each node). Errors name the field.
// natural: `client_ids` (one per sample) groups the samples; the clients with at least min_samples
// are drawn in a seeded order and node k takes all the rows of the k-th (LEAF / FEMNIST style).
Result<std::vector<std::vector<uint32_t>>> PartitionAll(const std::vector<int32_t>& labels, int num_classes,
                                                        const PartitionSpec& spec,
                                                        const std::vector<int64_t>& client_ids = {});
// One node's share of PartitionAll.
Result<std::vector<uint32_t>> PartitionFor(const std::vector<int32_t>& labels, int num_classes,
                                           const PartitionSpec& spec, uint32_t node_index);

}  // namespace edgebed
