// Test helper: .npz files as numpy.savez writes them (format 1.0 .npy members in a zip, stored or
// deflated), written with libzip. Header-only; suites that include it link libzip.
#pragma once
#include <doctest/doctest.h>
#include <zip.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "splitnets/npz_file.h"

namespace edgebed::testing {

// One .npy member (the library's writer; Fortran order too, for the reader's refusal).
inline std::string Npy(const std::string& descr, const std::vector<int64_t>& shape, const void* data, size_t bytes,
                       bool fortran = false) {
  return NpyBytes(descr, shape, data, bytes, fortran);
}

// Writes members {array name -> .npy bytes} to `path`.
inline void WriteNpz(const std::string& path, const std::map<std::string, std::string>& members, bool deflate) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  REQUIRE(z);
  for (const auto& [name, bytes] : members) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    const zip_int64_t i = zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE);
    REQUIRE(i >= 0);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  REQUIRE(zip_close(z) == 0);
}

}  // namespace edgebed::testing
