#include "record/progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace edgebed {

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  if (t < 60) return fmt::format("{} s", t);
  if (t < 3600) return fmt::format("{} min {:02d} s", t / 60, static_cast<int>(t % 60));
  return fmt::format("{} h {:02d} min", t / 3600, static_cast<int>((t % 3600) / 60));
}

double TimeLeft(double elapsed_s, double done, double total) {
  if (!(done > 0) || !std::isfinite(elapsed_s)) return -1.0;
  return elapsed_s * std::max(0.0, total - done) / done;
}

Progress::Progress(std::string what, double total, std::string unit, double log_every_s, bool live)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), log_every_s_(log_every_s),
      live_(live && ::isatty(STDERR_FILENO) == 1), start_(Clock::now()), last_shown_(start_) {}

Progress::~Progress() {
  if (drawn_ && !finished_) std::fputs("\n", stderr);  // leave the terminal on a fresh line
}

std::string Progress::Line(double done, const std::string& note) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double left = TimeLeft(elapsed, done, total_);
  const double pct = total_ > 0 ? 100.0 * done / total_ : 0.0;
  std::string line = unit_.empty() ? fmt::format("{}: {:.0f}% done, {} elapsed", what_, pct, FormatDuration(elapsed))
                                   : fmt::format("{}: {:g}/{:g} {} ({:.0f}%), {} elapsed", what_, done, total_, unit_, pct,
                                                 FormatDuration(elapsed));
  if (left >= 0 && done < total_) line += ", ~" + FormatDuration(left) + " left";
  if (!note.empty()) line += "; " + note;
  return line;
}

void Progress::Update(double done, const std::string& note) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_shown_).count();
  if (since < (live_ ? 0.5 : log_every_s_)) return;
  last_shown_ = now;
  if (live_) {
    std::fprintf(stderr, "\r\033[K%s", Line(done, note).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else {
    spdlog::info("{}", Line(done, note));
  }
}

void Progress::Finish(double done, const std::string& note) {
  if (finished_) return;
  finished_ = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  if (drawn_) std::fputs("\r\033[K", stderr);
  spdlog::info("{}: {:g} of {:g} {} done in {}{}", what_, done, total_, unit_, FormatDuration(elapsed), note.empty() ? "" : "; " + note);
}

}  // namespace edgebed
