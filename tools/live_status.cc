#include "tools/live_status.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "record/progress.h"

namespace edgebed {
namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

LiveStatus::LiveStatus(int fd, std::string metrics_path, unsigned last_round, std::string unit)
    : fd_(fd), metrics_path_(std::move(metrics_path)), unit_(std::move(unit)), last_round_(last_round), start_s_(Now()) {}

LiveStatus::~LiveStatus() {
  if (fd_ >= 0) ::close(fd_);
}

void LiveStatus::ReadRows() {
  std::ifstream in(metrics_path_, std::ios::binary);
  if (!in) return;
  in.seekg(0, std::ios::end);
  const long size = static_cast<long>(in.tellg());
  if (size < offset_) offset_ = 0, pending_row_.clear();  // a new file (a resumed run rewrites it)
  if (size == offset_) return;
  in.seekg(offset_);
  std::string chunk(static_cast<size_t>(size - offset_), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  offset_ = size;
  pending_row_ += chunk;
  for (size_t nl; (nl = pending_row_.find('\n')) != std::string::npos;) {
    const auto row = nlohmann::json::parse(pending_row_.substr(0, nl), nullptr, false);
    pending_row_.erase(0, nl + 1);
    if (!row.is_object()) continue;
    const auto r = row.value("round", row.value("epoch", 0u));
    if (r == 0) {
      first_row_s_ = Now();  // training starts after the initial evaluation
    } else {
      round_ = r;
      if (first_row_s_ < 0) first_row_s_ = start_s_;
    }
    if (row.contains("test_accuracy") && row["test_accuracy"].is_number()) accuracy_ = row["test_accuracy"].get<double>();
  }
}

std::string LiveStatus::StatusLine() const {
  const double elapsed = Now() - start_s_;
  std::string line = fmt::format("[edgebed run] {} {}/{} done", unit_, round_, last_round_);
  if (accuracy_ >= 0) line += fmt::format(", test accuracy {:.4f}", accuracy_);
  line += ", " + FormatDuration(elapsed) + " elapsed";
  if (round_ > 0 && first_row_s_ >= 0 && round_ < last_round_)
    line += ", ~" + FormatDuration(TimeLeft(Now() - first_row_s_, round_, last_round_)) + " left";
  return line;
}

void LiveStatus::Pump(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  std::string out;
  if (fd_ >= 0 && ::poll(&p, 1, timeout_ms) > 0) {
    char buf[8192];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) partial_.append(buf, static_cast<size_t>(n));
    if (n == 0) {  // the server closed its output
      ::close(fd_);
      fd_ = -1;
    }
    const size_t last_nl = partial_.rfind('\n');
    if (last_nl != std::string::npos) {
      out = partial_.substr(0, last_nl + 1);
      partial_.erase(0, last_nl + 1);
    }
  } else if (fd_ < 0) {
    ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);
  }
  ReadRows();
  const std::string line = StatusLine();
  if (out.empty() && line == shown_) return;  // redrawn when it changes
  shown_ = line;
  std::fputs(("\r\033[K" + out + line).c_str(), stdout);
  std::fflush(stdout);
}

void LiveStatus::Finish() {
  while (fd_ >= 0) Pump(100);
  std::fputs(("\r\033[K" + partial_).c_str(), stdout);
  if (!partial_.empty() && partial_.back() != '\n') std::fputs("\n", stdout);
  partial_.clear();
  std::fflush(stdout);
}

}  // namespace edgebed
