// Arrays in a .npz file as numpy.savez / savez_compressed write them (a zip of .npy members),
// read through Debian's libzip. Rows can be read selectively: a node keeps only its own rows, with
// stored members seeked and compressed ones streamed past.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

// One .npy member's header: dtype kind ('u' unsigned, 'i' signed, 'f' float, 'b' bool), bytes per
// item, C-order shape.
struct NpyHeader {
  std::string member;  // e.g. "x.npy"
  char kind = 'f';
  int item_bytes = 4;
  std::vector<int64_t> shape;
  uint64_t rows() const { return shape.empty() ? 1 : static_cast<uint64_t>(shape[0]); }
  uint64_t row_values() const;  // values per row (product of shape[1:])
};

class NpzFile {
 public:
  // Errors name the file: missing, not a zip, unreadable.
  static Result<std::unique_ptr<NpzFile>> Open(const std::string& path);
  ~NpzFile();
  NpzFile(const NpzFile&) = delete;
  NpzFile& operator=(const NpzFile&) = delete;

  const std::string& path() const { return path_; }
  bool Has(const std::string& array) const;  // "x" looks for x.npy
  // The header of `array`; errors name the file, the member and what is unsupported
  // (Fortran order, big-endian, object or string dtypes).
  Result<NpyHeader> Header(const std::string& array) const;
  // Rows `rows` (ascending, each < the header's rows; null = all) of `array`, converted: ReadFloat
  // from any numeric dtype, ReadInt from integer dtypes, ReadU8 from 'u1' only.
  Result<std::vector<float>> ReadFloat(const std::string& array, const std::vector<uint64_t>* rows) const;
  Result<std::vector<int64_t>> ReadInt(const std::string& array, const std::vector<uint64_t>* rows) const;
  Result<std::vector<uint8_t>> ReadU8(const std::string& array, const std::vector<uint64_t>* rows) const;

 private:
  NpzFile() = default;
  // Opens `array`, parses its header into `header`, lets `check` refuse it, then calls
  // `take(row_bytes_ptr)` for each wanted row (all rows when `rows` is null), in order.
  template <typename Check, typename Take>
  Status ForRows(const std::string& array, const std::vector<uint64_t>* rows, NpyHeader* header, Check check, Take take) const;
  // The rows converted to T, after `allowed` accepted the header.
  template <typename T, typename Allowed>
  Result<std::vector<T>> ReadAs(const std::string& array, const std::vector<uint64_t>* rows, Allowed allowed) const;
  std::string path_;
  void* zip_ = nullptr;  // zip_t*
};

// One array to write: numpy dtype descr ("<f4", "|u1", "<i8"), C-order shape, the bytes.
struct NpyArray {
  std::string name;  // "x" becomes x.npy
  std::string descr;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;
};

// The .npy member numpy writes for `a` (format 1.0, header padded to 64 bytes).
std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape, const void* data, size_t bytes,
                     bool fortran = false);

// Writes `arrays` to `path` as numpy.savez does (stored members). libzip writes a temporary file and
// renames it on close: a failure leaves no half file. Errors name the file.
Status WriteNpz(const std::string& path, const std::vector<NpyArray>& arrays);

}  // namespace edgebed
