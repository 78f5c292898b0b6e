// What a node carries from one round it takes part in to the next: digital OTA's quantisation error
// (error feedback), SCAFFOLD's control variate c_i, a split-learning encoder's training state. A server that resumed from its checkpoint
// plays again the rounds after it (one, or two when a round's evaluation overlapped the next); a
// node asked for a round it has trained already starts it again from the carry it had before that
// round, so the replayed round equals the first. With a state file the carry also survives a
// restart of the node (`edgebed run --resume` starts every node afresh): the file is written
// atomically after every round that changed a non-empty carry, and read before the node's first.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "codecs/status.h"
#include "codecs/vq.h"

namespace edgebed {

struct Carry {
  ErrorFeedbackQuantiser vq;   // digital OTA: the node's quantisation error
  std::vector<float> control;  // SCAFFOLD: c_i (empty = zeros)
  std::string encoder;         // split learning: the encoder's parameters, statistics and momentum
  bool empty() const { return vq.residual().empty() && control.empty() && encoder.empty(); }
};

class RoundCarry {
 public:
  // `state_file` empty: kept in memory only.
  explicit RoundCarry(std::string state_file = "") : file_(std::move(state_file)) {}
  RoundCarry(const RoundCarry&) = delete;
  RoundCarry& operator=(const RoundCarry&) = delete;

  // The carry to train round `round` of run `run_id` from. The first call reads the state file (a
  // file of another run is ignored; a damaged one is an error naming it, and the node goes on from
  // nothing). The pointer stays valid until the next Begin.
  [[nodiscard]] Result<Carry*> Begin(const std::string& run_id, uint32_t round);
  // The round trained: writes the state file (when there is one and the carry holds anything).
  [[nodiscard]] Status Commit();

 private:
  [[nodiscard]] Status Load(const std::string& run_id);
  static constexpr size_t kKeep = 3;  // rounds a resumed server can play again, and one to spare
  std::string file_, run_id_;
  bool loaded_ = false;
  Carry now_;
  std::deque<std::pair<uint32_t, Carry>> before_;  // (round, the carry before it), oldest first
};

}  // namespace edgebed
