#include "server/round_tracker.h"

namespace edgebed {

void RoundTracker::Begin(uint32_t r) {
  round_ = r;
  pending_.clear();
  failures_.clear();
  accepted_ = 0;
}

void RoundTracker::Next(uint32_t r) {
  round_ = r;
  failures_.clear();
  accepted_ = 0;
}

std::vector<std::string> RoundTracker::Pending() const {
  std::vector<std::string> out;
  for (const auto& [id, r] : pending_) out.push_back(id);
  return out;
}

void RoundTracker::Accept(const std::string& id) {
  if (pending_.erase(id)) ++accepted_;
}

bool RoundTracker::Fail(const std::string& id, const std::string& reason) {
  if (!pending_.erase(id)) return false;
  failures_.push_back({id, reason});
  return true;
}

std::vector<std::string> RoundTracker::Silent(const NodeRegistry& registry, Clock::time_point now) const {
  std::vector<std::string> silent;
  for (const auto& [id, r] : pending_) {
    const NodeRecord* rec = registry.Find(id);
    if (!rec || std::chrono::duration<double>(now - registry.LastHeard(*rec)).count() > opt_.liveness_timeout_s)
      silent.push_back(id);
  }
  return silent;
}

RoundTracker::Clock::time_point RoundTracker::DeadlineFrom(Clock::time_point t0) const {
  return t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt_.round_deadline_s));
}

std::string RoundTracker::LastFailures(size_t max) const {
  std::string out;
  for (size_t i = 0; i < failures_.size() && i < max; ++i)
    out += (i ? ", " : "; last failures: ") + failures_[i].node_id + ": " + failures_[i].reason;
  if (failures_.size() > max) out += " (and " + std::to_string(failures_.size() - max) + " more)";
  return out;
}

}  // namespace edgebed
