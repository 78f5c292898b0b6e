// FedBuff's schedule (Nguyen et al. 2022, asynchronous buffered aggregation; private to server/):
// the server keeps a set number of nodes training at all times, each job starting from the model
// version current when it was sent; a finished job's update is applied with a weight that falls with
// its staleness (server steps since its version). On the virtual clock the jobs complete in order of
// virtual finish time, whatever order their answers arrive in: a finished job is handed out only once
// no job still training could finish before it (each job carries a lower bound on its duration), so
// one scenario and one seed give one run. Without a virtual clock (real node processes), jobs complete
// in order of arrival.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "channel/uplink.h"
#include "codecs/status.h"
#include "server/strategy.h"

namespace edgebed {

// The weight of an update `staleness` server steps old: "sqrt" = 1 / sqrt(1 + s) (FedBuff's
// default), "constant" = 1.
double StalenessWeight(const std::string& kind, uint32_t staleness);
const std::vector<std::string>& StalenessKinds();

struct AsyncJob {
  std::string node_id;
  uint32_t round = 0;          // the step it was sent in (fit_ins.round)
  uint64_t version = 0;        // server steps applied when it was sent
  uint64_t seq = 0;            // dispatch order, breaks ties
  double start_s = 0.0;        // virtual time it was sent
  double min_duration_s = 0.0; // it cannot finish before start_s + this (0 = no bound known)
  // Once it is done:
  bool done = false;
  bool ok = false;
  double finish_s = 0.0;       // virtual completion (a failure: start_s + min_duration_s)
  FitResult result;            // ok: the update, its duration in result.virtual_s
  std::string failure;         // not ok: why
  LinkAccounting link;         // what its upload cost on the uplink
  uint64_t uplink_bytes = 0;   // its fit_res frame
  double radio_j = 0.0, compute_j = 0.0;
};

class AsyncSchedule {
 public:
  // virtual_order: complete jobs by virtual finish time (simulated nodes); else by arrival.
  explicit AsyncSchedule(bool virtual_order) : virtual_order_(virtual_order) {}

  // A job is sent; the node must have none in flight.
  [[nodiscard]] Status Dispatch(AsyncJob job);
  bool InFlight(const std::string& node_id) const { return jobs_.count(node_id) > 0; }
  size_t in_flight() const { return jobs_.size(); }
  // The job of `node_id` answered with an update that took `result.virtual_s` of virtual time.
  [[nodiscard]] Status Complete(const std::string& node_id, FitResult result, LinkAccounting link, uint64_t bytes,
                                double radio_j, double compute_j);
  // The job of `node_id` ended without an update (offline, failed, gone, silent).
  [[nodiscard]] Status Fail(const std::string& node_id, const std::string& reason);
  // The next job in completion order, once nothing still training can come before it; none yet.
  std::optional<AsyncJob> PopReady();
  // The nodes whose job is still training (not done).
  std::vector<std::string> Training() const;

 private:
  bool virtual_order_;
  uint64_t arrivals_ = 0;
  std::map<std::string, AsyncJob> jobs_;      // in flight, by node
  std::map<std::string, uint64_t> arrival_;  // done jobs: their arrival number (arrival order)
};

}  // namespace edgebed
