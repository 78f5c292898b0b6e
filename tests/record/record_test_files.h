// What the record suites share: a fresh folder per test, and a file's bytes.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace edgebed::record_test {

// A fresh, empty folder under the temp folder, unique to this test process.
inline std::string Dir(const std::string& suite, const std::string& tag) {
  const auto d = std::filesystem::temp_directory_path() / ("edgebed-" + suite + "-" + tag + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace edgebed::record_test
