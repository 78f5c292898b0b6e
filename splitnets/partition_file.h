// One node's share of the training set in a file of its own (an .npz numpy reads), so that a
// deployed node needs no copy of the data set: `edgebed partition` writes one per node on the
// controller, and `edgebed node --partition FILE` trains on it. The file carries a stamp of the data
// and partition settings it was cut with; a node refuses a file cut for another node or another run.
#pragma once
#include <cstdint>
#include <string>

#include "codecs/status.h"
#include "splitnets/data_files.h"
#include "splitnets/partition.h"

namespace edgebed {

// What a partition file was cut from: the data settings (not the file paths), the partition, the node
// index, and the training set's row count.
struct PartitionCut {
  DataSpec data;
  PartitionSpec partition;
  uint32_t node_index = 0;
  uint64_t train_rows = 0;  // rows of the whole training set (after train_limit and classes)
};

// Writes node `cut.node_index`'s rows (x as stored: uint8, float32 or int64; y labels or targets),
// the normalisation in use, the class count and the stamp. Errors name the file.
Status WritePartitionFile(const std::string& path, const Dataset& rows, const PartitionCut& cut);

// Reads a partition file and checks its stamp against `expected`: a mismatch names the file and the
// setting (e.g. "made for node_index 3, this node is 1"). The Dataset carries the file's class count
// and normalisation.
Result<Dataset> ReadPartitionFile(const std::string& path, const PartitionCut& expected);

}  // namespace edgebed
