#include "record/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace edgebed {
namespace {

std::string Errno() { return std::strerror(errno); }

// Writes all of `bytes` to `fd`; false with errno set on failure.
bool WriteAll(int fd, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot write " + tmp + ": " + Errno());
  if (!WriteAll(fd, bytes) || ::fsync(fd) != 0) {
    const std::string why = Errno();
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError("cannot write " + path + " (" + std::to_string(bytes.size()) + " bytes): " + why);
  }
  if (::close(fd) != 0) {
    const std::string why = Errno();
    ::unlink(tmp.c_str());
    return Status::IoError("cannot write " + path + ": " + why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = Errno();
    ::unlink(tmp.c_str());
    return Status::IoError("cannot rename " + tmp + " to " + path + ": " + why);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // the rename itself reaches the disk
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("cannot read " + path + ": " + Errno());
  std::string out;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) out.append(buf, n);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) return Status::IoError("cannot read " + path);
  return out;
}

LineFile::~LineFile() { Close(); }

void LineFile::Close() {
  if (f_) std::fclose(f_);
  f_ = nullptr;
}

Status LineFile::Open(const std::string& path, bool append) {
  Close();
  path_ = path;
  failed_ = Status::Ok();
  f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!f_) return Status::IoError("cannot open " + path + " for writing: " + Errno());
  good_size_ = std::ftell(f_);
  return Status::Ok();
}

Status LineFile::Append(std::string_view line) {
  if (!failed_.ok()) return failed_;
  if (!f_) return Status::IoError(path_.empty() ? "a result file was written before it was opened" : path_ + " is not open");
  std::string text(line);
  text += '\n';
  const bool ok = std::fwrite(text.data(), 1, text.size(), f_) == text.size() && std::fflush(f_) == 0;
  if (ok) {
    good_size_ += static_cast<long>(text.size());
    return Status::Ok();
  }
  const std::string why = Errno();
  std::clearerr(f_);
  // Drop what stdio still buffers of the failed line and cut the file back to its last whole line.
  std::fclose(f_);
  f_ = nullptr;
  if (::truncate(path_.c_str(), good_size_) != 0) { /* the partial line stays; the error still names the file */ }
  failed_ = Status::IoError("cannot write " + path_ + ": " + why + " (the " + std::to_string(good_size_) +
                            " bytes written before are kept)");
  return failed_;
}

}  // namespace edgebed
