// A scenario's data from files: Fashion-MNIST, any idx (MNIST-format) pair, CIFAR-10's binary
// batches or an .npz of arrays x, y and optional client_id. A plan reads the labels alone (what a
// partition needs); samples are read only for the rows asked for, so a node holds just its own.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "splitnets/dataset.h"
#include "splitnets/partition.h"

namespace edgebed {

// [data] of a scenario, as far as files go.
struct DataSpec {
  std::string format = "fashion-mnist";  // fashion-mnist | idx | cifar10 | npz
  std::string dir;            // fashion-mnist, cifar10: the folder ("" = $EDGEBED_DATA_DIR or Debian's Fashion-MNIST)
  std::string train;          // idx: the images file (.gz or raw); npz: the file
  std::string train_labels;   // idx: the labels file
  std::string test;           // idx, npz: the test file; "" = hold out a share of train (held_out)
  std::string test_labels;    // idx
  double held_out = 0.0;      // [0, 0.9]: share of the training rows kept as the test set when there is no test file
  uint32_t train_limit = 0;   // 0 = all: keep the first N training rows
  uint32_t test_limit = 0;    // 0 = all
  std::vector<int> classes;   // learn only these (relabelled 0..n-1); empty = all
  std::vector<double> mean, std;  // normalisation per channel or one value; empty = the format's default
  uint64_t seed = 1;          // the held-out draw
};

// Which rows are the training and the test set, and their labels (or targets), from the labels alone.
struct DataPlan {
  DataSpec spec;
  Dataset train;  // labels/targets, classes, shape, normalisation of the training rows; no samples
  Dataset test;   // the same for the test rows
  std::vector<uint64_t> train_rows, test_rows;  // file row of each position
  std::vector<int64_t> client_ids;  // npz client_id of each training position; empty if the file has none
};

// Errors name the file and the field: a missing or malformed file, labels out of range, a test
// set that is neither a file nor a share.
Result<DataPlan> PlanData(const DataSpec& spec);

// Training samples at `positions` (of plan.train; any order, repeats allowed) or the test set,
// read from the files: nothing else is held in memory.
Result<Dataset> LoadTrainRows(const DataPlan& plan, const std::vector<uint32_t>& positions);
Result<Dataset> LoadTestSet(const DataPlan& plan);

// Every node's training positions under `spec` (natural: the plan's client ids).
Result<std::vector<std::vector<uint32_t>>> PartitionPlan(const DataPlan& plan, const PartitionSpec& spec);
// How many positions each node holds, as PartitionPlan gives them; `sample` without drawing them
// (100,000 nodes' draws are 24 MB the server would hold only to count).
Result<std::vector<uint64_t>> PartitionPlanSizes(const DataPlan& plan, const PartitionSpec& spec);

}  // namespace edgebed
