#include "server/checkpoint.h"

#include <zlib.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "record/files.h"

#include <unistd.h>

#include <ctime>

namespace edgebed {
namespace {

constexpr char kMagic[] = "EBCKPT02";
constexpr size_t kMagicLen = 8;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}
uint32_t Crc(const std::string& s, size_t n) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(n)));
}

}  // namespace

std::string CheckpointPath(const std::string& output_dir) { return output_dir + "/checkpoint.bin"; }

Status SaveCheckpoint(const std::string& output_dir, const ServerCheckpoint& c) {
  nlohmann::json specs = nlohmann::json::array();
  for (const auto& t : c.global.specs) specs.push_back({{"name", t.name}, {"shape", t.shape}});
  const nlohmann::json head = {{"round", c.round},
                               {"run_id", c.run_id},
                               {"seed", c.seed},
                               {"virtual_clock_s", c.virtual_clock_s},
                               {"select_rng", c.select_rng},
                               {"state_bytes", c.state.size()},
                               {"values", c.global.flat.size()},
                               {"specs", specs}};
  const std::string h = head.dump();
  std::string out(kMagic, kMagicLen);
  PutU32(&out, static_cast<uint32_t>(h.size()));
  out += h;
  out.append(reinterpret_cast<const char*>(c.global.flat.data()), c.global.bytes());
  out += c.state;
  PutU32(&out, Crc(out, out.size()));
  return WriteFileAtomic(CheckpointPath(output_dir), out);
}

Result<ServerCheckpoint> LoadCheckpoint(const std::string& output_dir) {
  const std::string path = CheckpointPath(output_dir);
  auto bytes = ReadFile(path);
  if (!bytes.ok())
    return Status::NotFound(bytes.status().message() + " (a run writes it after its first complete round)");
  const std::string& s = bytes.value();
  if (s.size() < kMagicLen + 8 || s.compare(0, kMagicLen, kMagic) != 0)
    return Status::Corruption(path + ": not an edgebed checkpoint (no " + std::string(kMagic) + " header)");
  if (GetU32(s, s.size() - 4) != Crc(s, s.size() - 4)) return Status::Corruption(path + ": CRC-32 mismatch (damaged file)");
  const uint32_t n = GetU32(s, kMagicLen);
  if (kMagicLen + 4 + static_cast<size_t>(n) + 4 > s.size()) return Status::Corruption(path + ": header length " + std::to_string(n) + " past the end");
  const auto head = nlohmann::json::parse(s.substr(kMagicLen + 4, n), nullptr, false);
  if (head.is_discarded() || !head.is_object()) return Status::Corruption(path + ": header is not JSON");
  ServerCheckpoint c;
  try {
    c.round = head.at("round").get<uint32_t>();
    c.run_id = head.at("run_id").get<std::string>();
    c.seed = head.at("seed").get<uint64_t>();
    c.virtual_clock_s = head.at("virtual_clock_s").get<double>();
    c.select_rng = head.at("select_rng").get<std::string>();
    for (const auto& t : head.at("specs")) c.global.specs.push_back({t.at("name").get<std::string>(), t.at("shape").get<std::vector<int64_t>>()});
    const size_t values = head.at("values").get<size_t>(), state = head.at("state_bytes").get<size_t>();
    const size_t at = kMagicLen + 4 + n;
    if (values > s.size() / sizeof(float) || state > s.size() || at + values * sizeof(float) + state + 4 != s.size())
      return Status::Corruption(path + ": " + std::to_string(values) + " values and " + std::to_string(state) +
                                " state bytes do not fit the file's " + std::to_string(s.size()) + " bytes");
    c.global.flat.resize(values);
    std::memcpy(c.global.flat.data(), s.data() + at, values * sizeof(float));
    c.state.assign(s, at + values * sizeof(float), state);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": header field missing or of the wrong type: " + e.what());
  }
  int64_t numel = 0;
  for (const auto& t : c.global.specs) numel += t.numel();
  if (numel != c.global.numel())
    return Status::Corruption(path + ": tensor shapes hold " + std::to_string(numel) + " values, the file " +
                              std::to_string(c.global.numel()));
  return c;
}

std::string UniqueRunId(const std::string& run_name) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return run_name + "-" + stamp + "-" + std::to_string(getpid());
}

Result<ServerCheckpoint> LoadCheckpointOf(const std::string& output_dir, const std::string& run_name, uint64_t seed) {
  auto ck = LoadCheckpoint(output_dir);
  if (ck.ok() && (ck->run_id.rfind(run_name + "-", 0) != 0 || ck->seed != seed))
    return Status::InvalidArgument(CheckpointPath(output_dir) + " belongs to run '" + ck->run_id + "' (seed " +
                                   std::to_string(ck->seed) + "), not to a run of '" + run_name + "'");
  return ck;
}

}  // namespace edgebed
