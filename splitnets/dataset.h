// Image classification data held as raw bytes (no libtorch here): Fashion-MNIST read straight from
// Debian's dataset-fashion-mnist idx.gz files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct Dataset {
  int rows = 0, cols = 0, num_classes = 10;
  std::vector<uint8_t> images;  // size() * rows * cols, row-major, 0..255
  std::vector<uint8_t> labels;  // size()
  size_t size() const { return labels.size(); }
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
