// The round in progress, whichever mode runs it (federated round, split-learning round or inference
// pass, GNN epoch): who still owes an answer, who answered with an update, who failed and why, and
// when a node has been silent too long or the round is past its deadline. It never talks to the
// network; the server core polls and tells it what arrived (private to server/).
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server/registry.h"
#include "server/strategy.h"

namespace edgebed {

struct RoundTrackerOptions {
  double liveness_timeout_s = 30.0;  // a node owing an answer and silent this long has failed
  double round_deadline_s = 600.0;   // a node still owing an answer this long after the start has failed
};

class RoundTracker {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RoundTracker(RoundTrackerOptions o) : opt_(o) {}

  // Round (or epoch, or pass) `r` starts: nobody owes anything, nobody has failed.
  void Begin(uint32_t r);
  // Asynchronous steps (FedBuff): step `r` starts with no failures and no accepted update, but the
  // nodes still training since an earlier step go on owing their answer for that step.
  void Next(uint32_t r);
  uint32_t round() const { return round_; }
  // `id` owes an answer for the round in progress (or, asynchronously, for `asked_in`).
  void Expect(const std::string& id) { pending_[id] = round_; }
  void Expect(const std::string& id, uint32_t asked_in) { pending_[id] = asked_in; }
  bool Expects(const std::string& id) const { return pending_.count(id) > 0; }
  // `id` owes an answer for exactly round `r` (what an answer naming r must match).
  bool Expects(const std::string& id, uint32_t r) const {
    auto it = pending_.find(id);
    return it != pending_.end() && it->second == r;
  }
  size_t expected() const { return pending_.size(); }
  bool done() const { return pending_.empty(); }
  std::vector<std::string> Pending() const;
  // `id` answered with an update (it counts towards the quorum).
  void Accept(const std::string& id);
  // `id` answered without an update (an inference pass done, a shard ready).
  void Release(const std::string& id) { pending_.erase(id); }
  // `id` failed this round; false (and nothing recorded) when it owed nothing.
  bool Fail(const std::string& id, const std::string& reason);
  // `id` could not be asked at all (its connection was gone): a failure of the round all the same.
  void Unreachable(const std::string& id, const std::string& reason) { failures_.push_back({id, reason}); }
  // The updates accepted never reached the server (an OTA round whose superposition failed).
  void DiscardAccepted() { accepted_ = 0; }
  // The round ends unfinished without anyone failing (a stop, a run that ends).
  void Abandon() { pending_.clear(); }
  size_t accepted() const { return accepted_; }
  const std::vector<FitFailure>& failures() const { return failures_; }

  // Nodes owing an answer and silent (per the registry's last_seen) for longer than the liveness timeout.
  std::vector<std::string> Silent(const NodeRegistry& registry, Clock::time_point now) const;
  Clock::time_point DeadlineFrom(Clock::time_point t0) const;
  const RoundTrackerOptions& options() const { return opt_; }
  // "; last failures: node-1: ..., node-2: ... (and N more)" of this round, for a stop's reason.
  std::string LastFailures(size_t max = 5) const;

 private:
  RoundTrackerOptions opt_;
  uint32_t round_ = 0;
  std::map<std::string, uint32_t> pending_;  // node -> the round it was asked for
  std::vector<FitFailure> failures_;
  size_t accepted_ = 0;
};

}  // namespace edgebed
