#include "server/selection.h"

#include <algorithm>
#include <cmath>

namespace edgebed {

Selection SelectNodes(const SelectionOptions& opt, const std::vector<Candidate>& available, Rng& rng) {
  Selection sel;
  if (available.empty()) return sel;
  const size_t k = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(opt.fraction * static_cast<double>(available.size()) - 1e-9)));
  const size_t want = std::min(available.size(),
                               static_cast<size_t>(std::ceil(static_cast<double>(k) * (1.0 + opt.over_commit) - 1e-9)));
  std::vector<Candidate> pool = available;
  std::shuffle(pool.begin(), pool.end(), rng);  // random order; also breaks ties below at random
  if (opt.policy == "deadline" && opt.virtual_deadline_s > 0) {
    const auto keep = std::stable_partition(pool.begin(), pool.end(), [&](const Candidate& c) {
      return c.predicted_s <= opt.virtual_deadline_s;
    });
    sel.excluded = static_cast<size_t>(pool.end() - keep);
    pool.erase(keep, pool.end());
  } else if (opt.policy == "channel") {
    std::stable_sort(pool.begin(), pool.end(),
                     [](const Candidate& a, const Candidate& b) { return a.channel_gain > b.channel_gain; });
  }
  if (pool.size() > want) pool.resize(want);
  for (const auto& c : pool) sel.ids.push_back(c.id);
  std::sort(sel.ids.begin(), sel.ids.end());
  sel.target = opt.over_commit > 0 ? k : 0;
  return sel;
}

}  // namespace edgebed
