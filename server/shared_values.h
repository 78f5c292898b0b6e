// Values many records share (the registry's connection routes and device profiles): one copy of
// each distinct value, its slot freed for reuse when its last holder lets go.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

namespace edgebed {

template <class T>
class SharedValues {
 public:
  // The slot of a value equal to `v` (stored if there is none), with one more holder. Linear in the
  // distinct values held: a handful of profiles, one route per connection.
  uint32_t Hold(const T& v) {
    for (uint32_t s = 0; s < values_.size(); ++s)
      if (holders_[s] > 0 && values_[s] == v) {
        ++holders_[s];
        return s;
      }
    uint32_t s;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
      values_[s] = v;
    } else {
      s = static_cast<uint32_t>(values_.size());
      values_.push_back(v);
      holders_.push_back(0);
    }
    holders_[s] = 1;
    return s;
  }
  void Release(uint32_t slot) {
    if (--holders_[slot] == 0) free_.push_back(slot);
  }
  // Holds `v` for a holder of `slot`: the slot it holds from now on.
  uint32_t Replace(uint32_t slot, const T& v) {
    if (values_[slot] == v) return slot;
    const uint32_t now = Hold(v);
    Release(slot);
    return now;
  }
  const T& operator[](uint32_t slot) const { return values_[slot]; }  // stays valid while held
  size_t held() const { return values_.size() - free_.size(); }

 private:
  std::deque<T> values_;  // a deque: references stay valid as values are added
  std::vector<uint32_t> holders_;
  std::vector<uint32_t> free_;
};

}  // namespace edgebed
