// A checkpoint's state blob, piece by piece: each piece is a u64 length (little-endian, as the
// machines edgebed runs on) and its bytes. The reader checks every length against what is left and
// against what the caller expects, so a cut or damaged blob is an error naming `what`, never a read
// past the end.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

class StateWriter {
 public:
  void U64(uint64_t v) { out_.append(reinterpret_cast<const char*>(&v), 8); }
  void Bytes(const std::string& b) {
    U64(b.size());
    out_ += b;
  }
  void Floats(const std::vector<float>& v) {
    U64(v.size());
    out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class StateReader {
 public:
  StateReader(const std::string& in, std::string what) : in_(in), what_(std::move(what)) {}
  [[nodiscard]] Status U64(uint64_t* v) {
    if (in_.size() - at_ < 8) return Cut("a count");
    std::memcpy(v, in_.data() + at_, 8);
    at_ += 8;
    return Status::Ok();
  }
  [[nodiscard]] Status Bytes(std::string* b) {
    uint64_t n = 0;
    EDGEBED_RETURN_IF_ERROR(U64(&n));
    if (n > in_.size() - at_) return Cut(std::to_string(n) + " bytes");
    b->assign(in_, at_, n);
    at_ += n;
    return Status::Ok();
  }
  // `expect` values exactly (the layout the caller holds).
  [[nodiscard]] Status Floats(std::vector<float>* v, size_t expect) {
    uint64_t n = 0;
    EDGEBED_RETURN_IF_ERROR(U64(&n));
    if (n != expect)
      return Status::Corruption(what_ + " holds " + std::to_string(n) + " values where " + std::to_string(expect) +
                                " are expected (another model?)");
    if (n * sizeof(float) > in_.size() - at_) return Cut(std::to_string(n) + " values");
    v->resize(n);
    std::memcpy(v->data(), in_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return Status::Ok();
  }
  // At most `max_values` values (a vector whose size the reader does not know beforehand).
  [[nodiscard]] Status FloatsUpTo(std::vector<float>* v, size_t max_values) {
    uint64_t n = 0;
    EDGEBED_RETURN_IF_ERROR(U64(&n));
    if (n > max_values || n * sizeof(float) > in_.size() - at_) return Cut(std::to_string(n) + " values");
    v->resize(n);
    std::memcpy(v->data(), in_.data() + at_, n * sizeof(float));
    at_ += n * sizeof(float);
    return Status::Ok();
  }
  bool done() const { return at_ == in_.size(); }

 private:
  Status Cut(const std::string& piece) const {
    return Status::Corruption(what_ + " is cut short: " + piece + " at byte " + std::to_string(at_) + " of " +
                              std::to_string(in_.size()));
  }
  const std::string& in_;
  std::string what_;
  size_t at_ = 0;
};

}  // namespace edgebed
