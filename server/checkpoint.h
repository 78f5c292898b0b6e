// The server's state after a complete round, written atomically (temporary file, fsync, rename) to
// <output_dir>/checkpoint.bin, so that `--resume` continues a crashed or stopped run from its last
// complete round and ends with the model an uninterrupted run would have (same seed).
//
// Format (little-endian): "EBCKPT02", u32 n, n bytes of JSON (round, run_id, seed, virtual clock,
// the selection generator's state, tensor names and shapes, the state's length), the model's
// float32 values, the mode's state bytes, u32 CRC-32 of everything before it.
#pragma once
#include <cstdint>
#include <string>

#include "codecs/params.h"
#include "codecs/status.h"

namespace edgebed {

struct ServerCheckpoint {
  uint32_t round = 0;              // the last round whose metrics row is written
  std::string run_id;
  uint64_t seed = 0;
  double virtual_clock_s = 0.0;
  std::string select_rng;          // std::mt19937_64 state as its stream text
  std::string state;               // the mode's own: the strategy's (empty for FedAvg) in a
                                   // federated run, the decoder and encoders in split learning
  ParamSet global;                 // the federated model (empty in split learning)
};

std::string CheckpointPath(const std::string& output_dir);
[[nodiscard]] Status SaveCheckpoint(const std::string& output_dir, const ServerCheckpoint& c);
// Errors name the file and what is wrong (missing, cut short, CRC, a field).
[[nodiscard]] Result<ServerCheckpoint> LoadCheckpoint(const std::string& output_dir);
// "<run_name>-<UTC start, yyyymmddThhmmssZ>-<process id>": two runs never share one, so a node's
// carried state and a checkpoint are never taken for another run's.
std::string UniqueRunId(const std::string& run_name);
// LoadCheckpoint, and an error unless it belongs to a run named `run_name` (its id starts with it)
// with `seed`.
[[nodiscard]] Result<ServerCheckpoint> LoadCheckpointOf(const std::string& output_dir, const std::string& run_name,
                                                        uint64_t seed);

}  // namespace edgebed
