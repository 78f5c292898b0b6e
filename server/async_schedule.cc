#include "server/async_schedule.h"

#include <cmath>
#include <limits>

namespace edgebed {

const std::vector<std::string>& StalenessKinds() {
  static const std::vector<std::string> kinds = {"sqrt", "constant"};
  return kinds;
}

double StalenessWeight(const std::string& kind, uint32_t staleness) {
  if (kind == "constant") return 1.0;
  return 1.0 / std::sqrt(1.0 + static_cast<double>(staleness));
}

Status AsyncSchedule::Dispatch(AsyncJob job) {
  if (jobs_.count(job.node_id)) return Status::InvalidArgument(job.node_id + " already has a job in flight");
  if (!(job.min_duration_s >= 0.0) || !std::isfinite(job.start_s))
    return Status::InvalidArgument("a job's start must be finite and its minimum duration >= 0");
  job.done = false;
  const std::string id = job.node_id;
  jobs_.emplace(id, std::move(job));
  return Status::Ok();
}

Status AsyncSchedule::Complete(const std::string& node_id, FitResult result, LinkAccounting link, uint64_t bytes,
                               double radio_j, double compute_j) {
  auto it = jobs_.find(node_id);
  if (it == jobs_.end() || it->second.done) return Status::InvalidArgument(node_id + " has no job training");
  if (!(result.virtual_s >= 0.0) || !std::isfinite(result.virtual_s))
    return Status::InvalidArgument(node_id + ": a job's virtual duration must be finite and >= 0");
  AsyncJob& j = it->second;
  j.done = j.ok = true;
  // A duration under the bound the schedule relied on would reorder the past: it counts as the bound.
  j.finish_s = j.start_s + std::max(result.virtual_s, j.min_duration_s);
  j.result = std::move(result);
  j.link = std::move(link);
  j.uplink_bytes = bytes;
  j.radio_j = radio_j;
  j.compute_j = compute_j;
  arrival_[node_id] = arrivals_++;
  return Status::Ok();
}

Status AsyncSchedule::Fail(const std::string& node_id, const std::string& reason) {
  auto it = jobs_.find(node_id);
  if (it == jobs_.end() || it->second.done) return Status::InvalidArgument(node_id + " has no job training");
  AsyncJob& j = it->second;
  j.done = true;
  j.ok = false;
  j.failure = reason;
  j.finish_s = j.start_s + j.min_duration_s;
  arrival_[node_id] = arrivals_++;
  return Status::Ok();
}

std::vector<std::string> AsyncSchedule::Training() const {
  std::vector<std::string> out;
  for (const auto& [id, j] : jobs_)
    if (!j.done) out.push_back(id);
  return out;
}

std::optional<AsyncJob> AsyncSchedule::PopReady() {
  const AsyncJob* best = nullptr;
  for (const auto& [id, j] : jobs_) {
    if (!j.done) continue;
    const bool before = !best || (virtual_order_ ? (j.finish_s < best->finish_s ||
                                                    (j.finish_s == best->finish_s && j.seq < best->seq))
                                                 : arrival_.at(id) < arrival_.at(best->node_id));
    if (before) best = &j;
  }
  if (!best) return std::nullopt;
  if (virtual_order_) {
    // Safe only if every job still training finishes strictly later than `best` at the earliest.
    for (const auto& [id, j] : jobs_)
      if (!j.done && !(j.start_s + j.min_duration_s > best->finish_s)) return std::nullopt;
  }
  AsyncJob out = std::move(jobs_.at(best->node_id));
  arrival_.erase(out.node_id);
  jobs_.erase(out.node_id);
  return out;
}

}  // namespace edgebed
