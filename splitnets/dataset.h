// Samples and their labels or targets, held as plain arrays (no libtorch here): images as bytes,
// feature vectors as floats, token ids as integers. Fashion-MNIST comes straight from Debian's
// dataset-fashion-mnist idx.gz files; other files (idx, CIFAR-10, npz) through data_files.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

enum class SampleType { kU8, kF32, kI64 };  // images (0..255) | features | token ids

struct Dataset {
  int rows = 0, cols = 0;  // images: height and width (shape = {channels, rows, cols})
  int num_classes = 10;    // classification; regression: 0
  std::vector<int64_t> shape;  // one sample's shape; empty = {1, rows, cols}
  SampleType type = SampleType::kU8;
  std::vector<uint8_t> images;    // kU8: size() * numel(shape), row-major
  std::vector<float> features;    // kF32
  std::vector<int64_t> tokens;    // kI64 (fed to the model as int64, not normalised)
  std::vector<int32_t> labels;    // classification: one per sample, 0..num_classes-1
  std::vector<float> targets;     // regression: target_dim per sample
  uint32_t target_dim = 0;        // 0: classification
  // Normalisation at batch time, per channel (shape[0]) or one value for all: kU8 (x / 255 - mean) /
  // std, kF32 (x - mean) / std. The default is Fashion-MNIST's pixel mean and deviation.
  std::vector<float> mean = {0.2860f}, std = {0.3530f};

  bool regression() const { return target_dim > 0; }
  size_t size() const { return regression() ? targets.size() / target_dim : labels.size(); }
  std::vector<int64_t> sample_shape() const;
  size_t sample_numel() const;  // values per sample
  // Appends sample `i` of `from` (same type and shape) to this set.
  void Append(const Dataset& from, size_t i);
  // An empty set with this one's type, shape, classes and normalisation.
  Dataset EmptyLike() const;
};

// $EDGEBED_DATA_DIR if set, else /usr/share/datasets/fashion-mnist.
std::string DefaultFashionMnistDir();

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`; `limit` > 0 keeps the first
// `limit` samples. Errors name the file and what was wrong with it.
Result<Dataset> LoadFashionMnist(const std::string& dir, bool train, size_t limit = 0);

// The labels alone (images empty, rows = cols = 0): what partitioning needs, without the 47 MB of
// training images. Same file checks and `limit` as LoadFashionMnist.
Result<Dataset> LoadFashionMnistLabels(const std::string& dir, bool train, size_t limit = 0);

}  // namespace edgebed
