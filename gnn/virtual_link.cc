#include "gnn/virtual_link.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace edgebed {

Status CheckVirtualLink(const VirtualLinkOptions& o) {
  if (!std::isfinite(o.rate_mbps) || o.rate_mbps < 0.0 || o.rate_mbps > 1e6)
    return Status::InvalidArgument("gnn.link_mbps = " + std::to_string(o.rate_mbps) +
                                   ": allowed 0 (bytes take no time) or up to 1e6 Mbit/s");
  if (!std::isfinite(o.delay_ms) || o.delay_ms < 0.0 || o.delay_ms > 1e5)
    return Status::InvalidArgument("gnn.link_delay_ms = " + std::to_string(o.delay_ms) + ": allowed 0..1e5 ms");
  return Status::Ok();
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

VirtualClock::VirtualClock(VirtualLinkOptions link, std::function<double()> cpu_seconds)
    : link_(link), cpu_(std::move(cpu_seconds)) {
  StartEpoch();
}

void VirtualClock::StartEpoch() {
  now_s_ = 0.0;
  uplink_free_s_ = 0.0;
  cpu_mark_s_ = cpu_();
}

void VirtualClock::Advance() {
  const double c = cpu_();
  now_s_ += std::max(0.0, c - cpu_mark_s_);
  cpu_mark_s_ = c;
}

double VirtualClock::Send(uint64_t bytes) {
  Advance();
  const double on_air = link_.rate_mbps > 0.0 ? static_cast<double>(bytes) * 8.0 / (link_.rate_mbps * 1e6) : 0.0;
  uplink_free_s_ = std::max(now_s_, uplink_free_s_) + on_air;
  return uplink_free_s_ + link_.delay_ms * 1e-3;
}

void VirtualClock::Receive(double arrival_s) {
  Advance();
  now_s_ = std::max(now_s_, arrival_s);
}

double VirtualClock::Now() {
  Advance();
  return now_s_;
}

}  // namespace edgebed
