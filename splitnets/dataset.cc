#include "splitnets/dataset.h"

#include <cstdlib>
#include <numeric>

#include "splitnets/data_files.h"

namespace edgebed {

std::vector<int64_t> Dataset::sample_shape() const {
  return shape.empty() ? std::vector<int64_t>{1, rows, cols} : shape;
}

size_t Dataset::sample_numel() const {
  size_t n = 1;
  for (int64_t d : sample_shape()) n *= static_cast<size_t>(d);
  return n;
}

void Dataset::Append(const Dataset& from, size_t i) {
  const size_t k = from.sample_numel();
  const auto at = static_cast<std::ptrdiff_t>(i * k), end = static_cast<std::ptrdiff_t>((i + 1) * k);
  switch (from.type) {
    case SampleType::kU8: images.insert(images.end(), from.images.begin() + at, from.images.begin() + end); break;
    case SampleType::kF32: features.insert(features.end(), from.features.begin() + at, from.features.begin() + end); break;
    case SampleType::kI64: tokens.insert(tokens.end(), from.tokens.begin() + at, from.tokens.begin() + end); break;
  }
  if (from.regression()) {
    const auto t = static_cast<std::ptrdiff_t>(i * from.target_dim);
    targets.insert(targets.end(), from.targets.begin() + t, from.targets.begin() + t + from.target_dim);
  } else {
    labels.push_back(from.labels[i]);
  }
}

Dataset Dataset::EmptyLike() const {
  Dataset d;
  d.rows = rows;
  d.cols = cols;
  d.num_classes = num_classes;
  d.shape = shape;
  d.type = type;
  d.target_dim = target_dim;
  d.mean = mean;
  d.std = std;
  return d;
}

std::string DefaultFashionMnistDir() {
  const char* env = std::getenv("EDGEBED_DATA_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

// Fashion-MNIST is the fashion-mnist format of data_files.h with the whole set read.
Result<Dataset> LoadFashionMnist(const std::string& dir, bool train, size_t limit) {
  DataSpec spec;
  spec.dir = dir;
  (train ? spec.train_limit : spec.test_limit) = static_cast<uint32_t>(limit);
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(spec));
  if (!train) return LoadTestSet(plan);
  std::vector<uint32_t> all(plan.train_rows.size());
  std::iota(all.begin(), all.end(), 0u);
  return LoadTrainRows(plan, all);
}

Result<Dataset> LoadFashionMnistLabels(const std::string& dir, bool train, size_t limit) {
  DataSpec spec;
  spec.dir = dir;
  (train ? spec.train_limit : spec.test_limit) = static_cast<uint32_t>(limit);
  EDGEBED_ASSIGN_OR_RETURN(DataPlan plan, PlanData(spec));
  Dataset d = train ? plan.train : plan.test;
  d.rows = d.cols = 0;
  d.shape.clear();
  return d;
}

}  // namespace edgebed
