// Which of the available nodes train in a round (Flower's ClientManager.sample, FedScale's
// selection). Random, deadline-aware (leave out nodes predicted to miss the virtual deadline) and
// channel-aware (best channel gain first), with over-commitment.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "codecs/rng.h"

namespace edgebed {

struct Candidate {
  std::string_view id;        // the registry's (or the caller's) string: it must outlive the selection
  double predicted_s = 0.0;   // predicted virtual completion (download + train + upload)
  double channel_gain = 1.0;  // expected channel power gain this round (path loss, fading when known)
};

struct SelectionOptions {
  std::string policy = "random";  // random | deadline | channel
  double fraction = 1.0;          // K = ceil(fraction * available)
  double over_commit = 0.0;       // select ceil(K (1 + over_commit))
  double virtual_deadline_s = 0.0;
};

struct Selection {
  std::vector<std::string> ids;  // sorted
  size_t target = 0;             // K when over-committing (aggregate the first K), else 0
  size_t excluded = 0;           // left out by the deadline policy
};

Selection SelectNodes(const SelectionOptions& opt, const std::vector<Candidate>& available, Rng& rng);

}  // namespace edgebed
