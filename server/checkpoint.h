// The server's state after a complete round, written atomically (temporary file, fsync, rename) to
// <output_dir>/checkpoint.bin, so that `--resume` continues a crashed or stopped run from its last
// complete round and ends with the model an uninterrupted run would have (same seed).
//
// Format (little-endian): "EBCKPT01", u32 n, n bytes of JSON (round, run_id, seed, virtual clock,
// the selection generator's state, tensor names and shapes, the strategy's state in hex), the model's
// float32 values, u32 CRC-32 of everything before it.
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
  std::string strategy_state;      // the strategy's own (empty for FedAvg)
  ParamSet global;
};

std::string CheckpointPath(const std::string& output_dir);
[[nodiscard]] Status SaveCheckpoint(const std::string& output_dir, const ServerCheckpoint& c);
// Errors name the file and what is wrong (missing, cut short, CRC, a field).
[[nodiscard]] Result<ServerCheckpoint> LoadCheckpoint(const std::string& output_dir);

}  // namespace edgebed
