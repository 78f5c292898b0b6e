// `edgebed run` on a terminal: the server's log lines pass through, and below them one live line
// with the run's progress and the time left, redrawn in place. Off a terminal nothing is added
// (the server's log already has a line per round with the time left).
#pragma once
#include <string>

namespace edgebed {

class LiveStatus {
 public:
  // `fd`: the read end of the server's output pipe (owned: closed on destruction). `metrics_path`:
  // the run's metrics.jsonl; `last_round`: the rounds, epochs or steps the run has; `unit`: their name.
  LiveStatus(int fd, std::string metrics_path, unsigned last_round, std::string unit);
  ~LiveStatus();
  LiveStatus(const LiveStatus&) = delete;
  LiveStatus& operator=(const LiveStatus&) = delete;

  // Passes on the server's output for up to `timeout_ms`, then redraws the live line.
  void Pump(int timeout_ms);
  // The rest of the server's output, and the live line cleared.
  void Finish();

 private:
  void ReadRows();
  std::string StatusLine() const;
  int fd_;
  std::string metrics_path_, unit_, partial_, pending_row_, shown_;
  unsigned last_round_, round_ = 0;
  long offset_ = 0;
  double accuracy_ = -1.0, start_s_, first_row_s_ = -1.0;
};

}  // namespace edgebed
