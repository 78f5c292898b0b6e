#include "splitnets/data_sources.h"

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <numeric>

#include "splitnets/npz_file.h"

namespace edgebed {
namespace {

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// An idx (MNIST-format) pair: unsigned-byte samples of any dimension, one-byte labels; gzip or raw.
class IdxSource : public Source {
 public:
  IdxSource(std::string images, std::string labels) : images_(std::move(images)), labels_(std::move(labels)) {}
  Status Open(const std::string& field) {
    gzFile f = gzopen(images_.c_str(), "rb");
    if (!f) return Status::NotFound(field + ": cannot open " + images_);
    uint8_t head[4 + 4 * 4];
    int got = gzread(f, head, 4);
    Status st;
    if (got != 4 || head[0] != 0 || head[1] != 0) {
      st = Status::Corruption(images_ + ": not an idx file (magic 0x0000TTDD)");
    } else if (head[2] != 0x08) {
      st = Status::InvalidArgument(images_ + ": idx element type 0x" + std::to_string(head[2]) + "; only unsigned bytes (0x08) are read");
    } else if (head[3] < 1 || head[3] > 4) {
      st = Status::InvalidArgument(images_ + ": " + std::to_string(head[3]) + " dimensions; allowed 1..4");
    } else if (gzread(f, head + 4, 4u * head[3]) != 4 * head[3]) {
      st = Status::Corruption(images_ + ": the idx header is cut short");
    }
    gzclose(f);
    EDGEBED_RETURN_IF_ERROR(st);
    ndim_ = head[3];
    for (int i = 0; i < ndim_; ++i) dims_.push_back(BigEndian32(head + 4 + 4 * i));
    return Status::Ok();
  }
  uint64_t rows() const override { return dims_[0]; }
  Status ReadTargets(Dataset* d, std::vector<int64_t>*) override {
    d->type = SampleType::kU8;
    if (ndim_ == 3) {  // images without a channel axis
      d->rows = static_cast<int>(dims_[1]);
      d->cols = static_cast<int>(dims_[2]);
      d->shape = {1, d->rows, d->cols};
    } else {
      d->shape.assign(dims_.begin() + 1, dims_.end());
      if (d->shape.empty()) d->shape = {1};
      if (ndim_ == 4) d->rows = static_cast<int>(dims_[2]), d->cols = static_cast<int>(dims_[3]);
    }
    gzFile f = gzopen(labels_.c_str(), "rb");
    if (!f) return Status::NotFound("cannot open labels file " + labels_);
    std::vector<uint8_t> buf(8 + rows());
    const int got = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    uint8_t extra;
    const bool longer = gzread(f, &extra, 1) == 1;
    gzclose(f);
    if (got < 8 || BigEndian32(buf.data()) != 2049)
      return Status::Corruption(labels_ + ": not an idx1 label file (magic 2049)");
    if (BigEndian32(buf.data() + 4) != rows() || static_cast<uint64_t>(got) != 8 + rows() || longer)
      return Status::Corruption(labels_ + ": " + std::to_string(BigEndian32(buf.data() + 4)) + " labels, but " + images_ +
                                " holds " + std::to_string(rows()) + " samples (or the file size does not match)");
    d->labels.assign(buf.begin() + 8, buf.end());
    return Status::Ok();
  }
  Status ReadSamples(const std::vector<uint64_t>& rows, Dataset* d) override {
    gzFile f = gzopen(images_.c_str(), "rb");
    if (!f) return Status::NotFound("cannot open " + images_);
    gzbuffer(f, 1 << 17);
    const uint64_t px = d->sample_numel(), header = 4 + 4 * static_cast<uint64_t>(ndim_);
    const size_t at = d->images.size();
    d->images.resize(at + rows.size() * px);
    Status st;
    for (size_t k = 0; k < rows.size() && st.ok(); ++k) {
      uint8_t* out = d->images.data() + at + k * px;
      if (gzseek(f, static_cast<z_off_t>(header + rows[k] * px), SEEK_SET) < 0 ||
          gzread(f, out, static_cast<unsigned>(px)) != static_cast<int>(px))
        st = Status::Corruption(images_ + ": cannot read sample " + std::to_string(rows[k]) + " (file cut short?)");
    }
    gzclose(f);
    return st;
  }

 private:
  std::string images_, labels_;
  int ndim_ = 0;
  std::vector<uint64_t> dims_;
};

// CIFAR-10's binary version: records of one label byte and 3x32x32 bytes (channel-major), in
// data_batch_1..5.bin (training) or test_batch.bin.
class Cifar10Source : public Source {
 public:
  static constexpr uint64_t kRecord = 1 + 3 * 32 * 32;
  Status Open(const std::string& dir, bool train) {
    const std::vector<std::string> names = train ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                                           "data_batch_4.bin", "data_batch_5.bin"}
                                                 : std::vector<std::string>{"test_batch.bin"};
    for (const auto& n : names) {
      std::error_code ec;
      const std::string path = dir + "/" + n;
      const auto size = std::filesystem::file_size(path, ec);
      if (ec) continue;
      if (size == 0 || size % kRecord != 0)
        return Status::Corruption(path + ": " + std::to_string(size) + " bytes is not a whole number of 3,073-byte CIFAR-10 records");
      files_.push_back({path, first_ + 0});
      first_ += size / kRecord;
    }
    if (files_.empty())
      return Status::NotFound("data.dir = '" + dir + "': no " + names[0] + " (CIFAR-10 binary version, cifar-10-batches-bin)");
    return Status::Ok();
  }
  uint64_t rows() const override { return first_; }
  Status ReadTargets(Dataset* d, std::vector<int64_t>*) override {
    d->type = SampleType::kU8;
    d->rows = d->cols = 32;
    d->shape = {3, 32, 32};
    std::vector<uint64_t> all(rows());
    std::iota(all.begin(), all.end(), uint64_t{0});
    return Each(all, [&](const uint8_t* rec, const std::string& path, uint64_t row) {
      if (rec[0] > 9) return Status::Corruption(path + ": label " + std::to_string(rec[0]) + " of record " + std::to_string(row) + " is outside 0..9");
      d->labels.push_back(rec[0]);
      return Status::Ok();
    }, 1);
  }
  Status ReadSamples(const std::vector<uint64_t>& rows, Dataset* d) override {
    return Each(rows, [&](const uint8_t* rec, const std::string&, uint64_t) {
      d->images.insert(d->images.end(), rec + 1, rec + kRecord);
      return Status::Ok();
    }, kRecord);
  }

 private:
  template <typename F>
  Status Each(const std::vector<uint64_t>& rows, F take, uint64_t bytes) {
    std::vector<uint8_t> rec(kRecord);
    size_t file = 0;
    std::ifstream in;
    for (uint64_t r : rows) {
      size_t want = file;
      while (want + 1 < files_.size() && files_[want + 1].second <= r) ++want;
      if (!in.is_open() || want != file) {
        in.close();
        file = want;
        in.open(files_[file].first, std::ios::binary);
        if (!in) return Status::NotFound("cannot open " + files_[file].first);
      }
      in.seekg(static_cast<std::streamoff>((r - files_[file].second) * kRecord));
      if (!in.read(reinterpret_cast<char*>(rec.data()), static_cast<std::streamsize>(bytes)))
        return Status::Corruption(files_[file].first + ": cannot read record " + std::to_string(r - files_[file].second));
      EDGEBED_RETURN_IF_ERROR(take(rec.data(), files_[file].first, r));
    }
    return Status::Ok();
  }
  std::vector<std::pair<std::string, uint64_t>> files_;  // path, first row
  uint64_t first_ = 0;
};

// numpy.savez arrays: x (one row per sample, any shape), y (int labels or float targets), client_id.
class NpzSource : public Source {
 public:
  Status Open(const std::string& path, const std::string& field) {
    auto f = NpzFile::Open(path);
    if (!f.ok()) return Status::NotFound(field + ": " + f.status().message());
    file_ = std::move(f).value();
    EDGEBED_ASSIGN_OR_RETURN(x_, file_->Header("x"));
    EDGEBED_ASSIGN_OR_RETURN(y_, file_->Header("y"));
    if (y_.rows() != x_.rows())
      return Status::InvalidArgument(path + ": y has " + std::to_string(y_.rows()) + " rows, x has " + std::to_string(x_.rows()));
    if (y_.shape.size() > 2) return Status::InvalidArgument(path + ": y must be 1-D (labels) or 2-D (regression targets)");
    return Status::Ok();
  }
  uint64_t rows() const override { return x_.rows(); }
  Status ReadTargets(Dataset* d, std::vector<int64_t>* clients) override {
    d->shape.assign(x_.shape.begin() + 1, x_.shape.end());
    if (d->shape.empty()) d->shape = {1};
    if (d->shape.size() == 3) d->rows = static_cast<int>(d->shape[1]), d->cols = static_cast<int>(d->shape[2]);
    d->type = x_.kind == 'f' ? SampleType::kF32 : (x_.kind == 'u' && x_.item_bytes == 1) ? SampleType::kU8 : SampleType::kI64;
    if (y_.kind == 'f') {
      d->target_dim = static_cast<uint32_t>(y_.row_values());
      d->num_classes = 0;
      EDGEBED_ASSIGN_OR_RETURN(d->targets, file_->ReadFloat("y", nullptr));
    } else {
      if (y_.shape.size() != 1) return Status::InvalidArgument(file_->path() + ": integer y must be 1-D (one label per row)");
      EDGEBED_ASSIGN_OR_RETURN(std::vector<int64_t> y, file_->ReadInt("y", nullptr));
      for (size_t i = 0; i < y.size(); ++i)
        if (y[i] < 0 || y[i] > 65535)
          return Status::InvalidArgument(file_->path() + ": y[" + std::to_string(i) + "] = " + std::to_string(y[i]) + " is outside 0..65535");
      d->labels.assign(y.begin(), y.end());
    }
    if (file_->Has("client_id")) {
      EDGEBED_ASSIGN_OR_RETURN(NpyHeader h, file_->Header("client_id"));
      if (h.shape.size() != 1 || h.rows() != rows())
        return Status::InvalidArgument(file_->path() + ": client_id must be 1-D with one id per row of x");
      EDGEBED_ASSIGN_OR_RETURN(*clients, file_->ReadInt("client_id", nullptr));
    }
    return Status::Ok();
  }
  Status ReadSamples(const std::vector<uint64_t>& rows, Dataset* d) override {
    switch (d->type) {
      case SampleType::kU8: return Append(file_->ReadU8("x", &rows), &d->images);
      case SampleType::kF32: return Append(file_->ReadFloat("x", &rows), &d->features);
      case SampleType::kI64: return Append(file_->ReadInt("x", &rows), &d->tokens);
    }
    return Status::Ok();
  }

 private:
  template <typename T>
  static Status Append(Result<std::vector<T>> r, std::vector<T>* out) {
    if (!r.ok()) return r.status();
    if (out->empty()) *out = std::move(r).value();
    else out->insert(out->end(), r.value().begin(), r.value().end());
    return Status::Ok();
  }
  std::unique_ptr<NpzFile> file_;
  NpyHeader x_, y_;
};

}  // namespace

Result<std::unique_ptr<Source>> OpenSource(const DataSpec& spec, bool train) {
  const std::string dir = spec.dir.empty() ? DefaultFashionMnistDir() : spec.dir;
  if (spec.format == "fashion-mnist") {
    const std::string prefix = dir + "/" + (train ? "train" : "t10k");
    auto s = std::make_unique<IdxSource>(prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz");
    Status st = s->Open("data.dir");
    if (st.code() == Status::Code::kNotFound) return Status::NotFound(st.message() + " (is dataset-fashion-mnist installed?)");
    EDGEBED_RETURN_IF_ERROR(st);
    return std::unique_ptr<Source>(std::move(s));
  }
  if (spec.format == "cifar10") {
    auto s = std::make_unique<Cifar10Source>();
    EDGEBED_RETURN_IF_ERROR(s->Open(spec.dir, train));
    return std::unique_ptr<Source>(std::move(s));
  }
  const std::string& file = train ? spec.train : spec.test;
  const std::string field = train ? "data.train" : "data.test";
  if (file.empty()) {
    if (train) return Status::InvalidArgument("data.format = \"" + spec.format + "\" needs data.train (a file)");
    return std::unique_ptr<Source>();
  }
  if (spec.format == "idx") {
    const std::string& labels = train ? spec.train_labels : spec.test_labels;
    if (labels.empty()) return Status::InvalidArgument(field + " is set, so " + field + "_labels (its idx1 labels file) is needed");
    auto s = std::make_unique<IdxSource>(file, labels);
    EDGEBED_RETURN_IF_ERROR(s->Open(field));
    return std::unique_ptr<Source>(std::move(s));
  }
  if (spec.format == "npz") {
    auto s = std::make_unique<NpzSource>();
    EDGEBED_RETURN_IF_ERROR(s->Open(file, field));
    return std::unique_ptr<Source>(std::move(s));
  }
  return Status::InvalidArgument("data.format = '" + spec.format + "' is unknown; allowed: fashion-mnist, idx, cifar10, npz");
}

}  // namespace edgebed
