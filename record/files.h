// Files that hold results: every write is checked, and a failure is an error naming the file.
// State that must survive a crash (summaries, checkpoints, the endpoint file) is replaced
// atomically: written to <path>.tmp, fsynced, renamed over <path>, and the folder fsynced.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

#include "codecs/status.h"

namespace edgebed {

// Replaces `path` with `bytes` atomically: a reader (or a crash) sees the old file or the new one.
[[nodiscard]] Status WriteFileAtomic(const std::string& path, std::string_view bytes);

// Reads a whole file. Errors name the file.
[[nodiscard]] Result<std::string> ReadFile(const std::string& path);

// A result file written a line at a time (metrics.jsonl, metrics.csv): each Append is flushed to the
// kernel and checked, so on a full disk the lines written before stay whole and the failing line is
// reported. Not copyable (owns a FILE*).
class LineFile {
 public:
  LineFile() = default;
  ~LineFile();
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;

  // Opens `path`, truncating it (append = false) or appending to it.
  [[nodiscard]] Status Open(const std::string& path, bool append);
  // Writes `line` and a newline, then flushes. After a failure the file is cut back to its last
  // whole line and every later Append fails too (naming the first failure).
  [[nodiscard]] Status Append(std::string_view line);
  const std::string& path() const { return path_; }
  bool is_open() const { return f_ != nullptr; }
  void Close();

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
  long good_size_ = 0;  // bytes up to the last whole line
  Status failed_;
};

}  // namespace edgebed
