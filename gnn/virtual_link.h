// Time on a virtual clock for shards on links slower than this machine's loopback (torch-free).
// Each shard process keeps its own clock, from 0 at the start of every epoch (the server starts
// the epochs together):
//  - compute advances it by the training thread's CPU time (not wall time, so four shards on two
//    cores still each count as one device of this machine's speed);
//  - a send leaves on the sender's uplink when that link is free, takes bytes * 8 / rate on it and
//    arrives `delay_ms` later; the sender goes on computing meanwhile (the send is asynchronous);
//  - a receive moves the clock to the tensor's arrival if that is later (waiting).
// A shard's epoch time is its clock after the epoch; the run's is the largest over the shards.
// Only the senders' uplinks are modelled (a full-duplex switch; a receiver's downlink shared by
// several senders is not), which favours layouts whose traffic fans in (graph parallelism).
#pragma once
#include <cstdint>
#include <functional>

#include "codecs/status.h"

namespace edgebed {

struct VirtualLinkOptions {
  double rate_mbps = 0.0;   // every shard's uplink [Mbit/s]; 0 = bytes take no time
  double delay_ms = 0.0;    // one-way latency added to every tensor [ms]
};
Status CheckVirtualLink(const VirtualLinkOptions& o);  // errors name gnn.link_mbps / gnn.link_delay_ms and the range

// The calling thread's CPU time [s].
double ThreadCpuSeconds();

class VirtualClock {
 public:
  // `cpu_seconds`: the compute clock (ThreadCpuSeconds; tests pass their own).
  explicit VirtualClock(VirtualLinkOptions link, std::function<double()> cpu_seconds = ThreadCpuSeconds);
  void StartEpoch();                  // the clock and the uplink to 0
  double Send(uint64_t bytes);        // returns when a tensor of `bytes` sent now arrives [s]
  void Receive(double arrival_s);     // a tensor that arrives at arrival_s has been taken
  double Now();                       // the clock [s], compute so far included

 private:
  void Advance();
  VirtualLinkOptions link_;
  std::function<double()> cpu_;
  double now_s_ = 0.0, cpu_mark_s_ = 0.0, uplink_free_s_ = 0.0;
};

}  // namespace edgebed
