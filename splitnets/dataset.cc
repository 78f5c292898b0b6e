#include "splitnets/dataset.h"

#include <zlib.h>

#include <cstdlib>
#include <memory>

namespace edgebed {
namespace {

Result<std::vector<uint8_t>> ReadGz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("cannot open " + path + " (is dataset-fashion-mnist installed?)");
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  int n;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0)
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string why = (n < 0 && msg) ? msg : "";
  gzclose(f);
  if (n < 0) return Status::Corruption(path + ": gzip error: " + why);
  return out;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::string DefaultFashionMnistDir() {
  const char* env = std::getenv("EDGEBED_DATA_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

Result<Dataset> LoadFashionMnist(const std::string& dir, bool train, size_t limit) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto images = ReadGz(prefix + "-images-idx3-ubyte.gz");
  if (!images.ok()) return images.status();
  auto labels = ReadGz(prefix + "-labels-idx1-ubyte.gz");
  if (!labels.ok()) return labels.status();
  const auto& im = images.value();
  const auto& lb = labels.value();
  if (im.size() < 16 || BigEndian32(im.data()) != 2051)
    return Status::Corruption(prefix + "-images-idx3-ubyte.gz: not an idx3 image file (magic 2051)");
  if (lb.size() < 8 || BigEndian32(lb.data()) != 2049)
    return Status::Corruption(prefix + "-labels-idx1-ubyte.gz: not an idx1 label file (magic 2049)");
  const size_t n = BigEndian32(im.data() + 4);
  Dataset d;
  d.rows = static_cast<int>(BigEndian32(im.data() + 8));
  d.cols = static_cast<int>(BigEndian32(im.data() + 12));
  const size_t px = static_cast<size_t>(d.rows) * static_cast<size_t>(d.cols);
  if (im.size() != 16 + n * px)
    return Status::Corruption(prefix + "-images: header says " + std::to_string(n) +
                              " images but the file size does not match");
  if (BigEndian32(lb.data() + 4) != n || lb.size() != 8 + n)
    return Status::Corruption(prefix + "-labels: count differs from the image file");
  const size_t keep = (limit > 0 && limit < n) ? limit : n;
  d.images.assign(im.begin() + 16, im.begin() + 16 + static_cast<std::ptrdiff_t>(keep * px));
  d.labels.assign(lb.begin() + 8, lb.begin() + 8 + static_cast<std::ptrdiff_t>(keep));
  for (uint8_t y : d.labels)
    if (y >= d.num_classes) return Status::Corruption(prefix + "-labels: label out of range 0..9");
  return d;
}

Result<Dataset> LoadFashionMnistLabels(const std::string& dir, bool train, size_t limit) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto labels = ReadGz(prefix + "-labels-idx1-ubyte.gz");
  if (!labels.ok()) return labels.status();
  const auto& lb = labels.value();
  if (lb.size() < 8 || BigEndian32(lb.data()) != 2049)
    return Status::Corruption(prefix + "-labels-idx1-ubyte.gz: not an idx1 label file (magic 2049)");
  const size_t n = BigEndian32(lb.data() + 4);
  if (lb.size() != 8 + n) return Status::Corruption(prefix + "-labels: header says " + std::to_string(n) +
                                                    " labels but the file size does not match");
  Dataset d;
  const size_t keep = (limit > 0 && limit < n) ? limit : n;
  d.labels.assign(lb.begin() + 8, lb.begin() + 8 + static_cast<std::ptrdiff_t>(keep));
  for (uint8_t y : d.labels)
    if (y >= d.num_classes) return Status::Corruption(prefix + "-labels: label out of range 0..9");
  return d;
}

}  // namespace edgebed
