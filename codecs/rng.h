// Seeded random streams. Every random draw in edgebed comes from an Rng handed to the object that
// draws, derived from (scenario seed, purpose, index) so that one scenario + one seed = one run.
#pragma once
#include <cstdint>
#include <random>
#include <string_view>

namespace edgebed {

// SplitMix64 finaliser: a good 64-bit mixer for deriving independent seeds.
inline uint64_t MixSeed(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a of a purpose tag, so streams for different purposes never collide by accident.
inline uint64_t HashTag(std::string_view tag) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : tag) { h ^= c; h *= 1099511628211ull; }
  return h;
}

// The seed of stream (purpose, a, b) of a run with seed `seed`.
inline uint64_t DeriveSeed(uint64_t seed, std::string_view purpose, uint64_t a = 0, uint64_t b = 0) {
  return MixSeed(MixSeed(MixSeed(seed ^ HashTag(purpose)) + a) + b);
}

using Rng = std::mt19937_64;

inline Rng MakeRng(uint64_t seed, std::string_view purpose, uint64_t a = 0, uint64_t b = 0) {
  return Rng(DeriveSeed(seed, purpose, a, b));
}

}  // namespace edgebed
