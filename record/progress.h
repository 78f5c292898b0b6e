// Progress of long work with an estimate of the time left, from the rate so far: on a terminal a
// live line on stderr (redrawn at most twice a second), in a log (stderr not a terminal) a line
// every `log_every_s`. Used by the commands that can take more than a few seconds.
#pragma once
#include <chrono>
#include <string>

namespace edgebed {

// "45 s", "3 min 20 s", "2 h 05 min"; "?" for a negative or non-finite time.
std::string FormatDuration(double seconds);

// The time left at a constant rate: elapsed x (total - done) / done; -1 when nothing is done yet.
double TimeLeft(double elapsed_s, double done, double total);

class Progress {
 public:
  // `what` names the work ("transfer pretrain"), `unit` what is counted ("batches"); an empty unit
  // shows the share done alone ("45% done").
  // `live` = false: log lines even on a terminal (a process whose log is its output).
  Progress(std::string what, double total, std::string unit, double log_every_s = 10.0, bool live = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` of the total so far; `note` is appended (a loss, an accuracy).
  void Update(double done, const std::string& note = "");
  // The closing line, once: what was done and how long it took.
  void Finish(double done, const std::string& note = "");
  // The line Update would show, without showing it (for tests and other logs).
  std::string Line(double done, const std::string& note) const;

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_, unit_;
  double total_, log_every_s_;
  bool live_, finished_ = false, drawn_ = false;
  Clock::time_point start_, last_shown_;
};

}  // namespace edgebed
