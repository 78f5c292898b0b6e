// Streaming aggregation kernels: memory is one accumulator the size of the model, however many
// updates are folded in.
#pragma once
#include <cstddef>
#include <vector>

namespace edgebed {

// sum_k w_k x_k / sum_k w_k, accumulated in double so that the result hardly depends on the order
// in which updates arrive. A NaN value is an erasure (a value the channel lost): that coordinate's
// mean is taken over the updates that delivered it.
class WeightedMean {
 public:
  void Reset(size_t n);
  void Add(const float* x, size_t n, double weight);  // n must equal the size given to Reset
  void Mean(float* out) const;                         // out[n]; zeros when nothing was added
  double total_weight() const { return total_; }
  size_t erased() const { return erased_; }  // values erased so far
  size_t count() const { return count_; }
  size_t size() const { return acc_.size(); }

 private:
  std::vector<double> acc_;
  std::vector<double> missing_;  // weight erased per coordinate; allocated on the first erasure
  size_t erased_ = 0;
  double total_ = 0.0;
  size_t count_ = 0;
};

}  // namespace edgebed
