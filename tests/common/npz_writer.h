// Test helper: .npz files as numpy.savez writes them (format 1.0 .npy members in a zip, stored or
// deflated), written with libzip. Header-only; suites that include it link libzip.
#pragma once
#include <doctest/doctest.h>
#include <zip.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace edgebed::testing {

// One .npy member: descr such as "<f4", "|u1", "<i8"; header padded to 64 bytes as numpy pads it.
inline std::string Npy(const std::string& descr, const std::vector<int64_t>& shape, const void* data, size_t bytes,
                       bool fortran = false) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  return out;
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
