// The readers behind data_files.h: one per file format, each reading the labels of every row and the
// samples of the rows asked for (ascending). Internal to splitnets.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "splitnets/data_files.h"

namespace edgebed {

// One file (or group of files) of samples whose rows can be read selectively.
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t rows() const = 0;
  // Labels or targets of every row (and npz client ids); sets type, shape, num_classes.
  virtual Status ReadTargets(Dataset* d, std::vector<int64_t>* clients) = 0;
  // Appends the samples of `rows` (ascending) to `d`.
  virtual Status ReadSamples(const std::vector<uint64_t>& rows, Dataset* d) = 0;
};

// The train (or test) source of `spec`; null with Ok when the format has no test file and none is given.
Result<std::unique_ptr<Source>> OpenSource(const DataSpec& spec, bool train);

}  // namespace edgebed
