#include "node/round_carry.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "codecs/state_bytes.h"
#include "record/files.h"

namespace edgebed {
namespace {

constexpr char kMagic[] = "EBCARRY2";
constexpr size_t kMaxValues = size_t{1} << 31;

void Put(StateWriter& w, const Carry& c) {
  w.Floats(c.vq.residual());
  w.Floats(c.control);
  w.Bytes(c.encoder);
}
Status Get(StateReader& r, Carry* c) {
  std::vector<float> residual;
  EDGEBED_RETURN_IF_ERROR(r.FloatsUpTo(&residual, kMaxValues));
  c->vq.set_residual(std::move(residual));
  EDGEBED_RETURN_IF_ERROR(r.FloatsUpTo(&c->control, kMaxValues));
  return r.Bytes(&c->encoder);
}

}  // namespace

Status RoundCarry::Load(const std::string& run_id) {
  loaded_ = true;
  if (file_.empty() || !std::filesystem::exists(file_)) return Status::Ok();
  auto bytes = ReadFile(file_);
  if (!bytes.ok()) return bytes.status();
  StateReader r(bytes.value(), file_);
  std::string magic, run;
  uint64_t n = 0;
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&magic));
  if (magic != kMagic) return Status::Corruption(file_ + ": not a node's carried state (no " + std::string(kMagic) + ")");
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&run));
  if (run != run_id) {
    spdlog::info("{} belongs to run {}, not to {}: starting from nothing", file_, run, run_id);
    return Status::Ok();
  }
  Carry now;
  std::deque<std::pair<uint32_t, Carry>> before;
  EDGEBED_RETURN_IF_ERROR(Get(r, &now));
  EDGEBED_RETURN_IF_ERROR(r.U64(&n));
  if (n > kKeep) return Status::Corruption(file_ + ": " + std::to_string(n) + " rounds kept, at most " + std::to_string(kKeep));
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t round = 0;
    EDGEBED_RETURN_IF_ERROR(r.U64(&round));
    before.emplace_back(static_cast<uint32_t>(round), Carry{});
    EDGEBED_RETURN_IF_ERROR(Get(r, &before.back().second));
  }
  if (!r.done()) return Status::Corruption(file_ + ": bytes past the end");
  now_ = std::move(now);
  before_ = std::move(before);
  spdlog::info("carried state of run {} read from {} (last round {})", run_id, file_,
               before_.empty() ? 0u : before_.back().first);
  return Status::Ok();
}

Result<Carry*> RoundCarry::Begin(const std::string& run_id, uint32_t round) {
  if (run_id != run_id_) {  // a new run (or the first): nothing carries over from another
    now_ = Carry{};
    before_.clear();
    loaded_ = false;
    run_id_ = run_id;
  }
  if (!loaded_) {
    Status st = Load(run_id);
    if (!st.ok()) return Status::Corruption(st.message() + " (this round fails; the node goes on from nothing)");
  }
  // A round trained already (the server plays it again): back to the carry from before it.
  for (size_t k = 0; k < before_.size(); ++k) {
    if (before_[k].first < round) continue;
    now_ = before_[k].second;
    before_.erase(before_.begin() + static_cast<std::ptrdiff_t>(k), before_.end());
    break;
  }
  before_.emplace_back(round, now_);
  while (before_.size() > kKeep) before_.pop_front();
  return &now_;
}

Status RoundCarry::Commit() {
  bool any = !now_.empty();
  for (const auto& b : before_) any = any || !b.second.empty();
  if (file_.empty() || !any) return Status::Ok();  // FedAvg and its kind carry nothing: no file
  StateWriter w;
  w.Bytes(kMagic);
  w.Bytes(run_id_);
  Put(w, now_);
  w.U64(before_.size());
  for (const auto& [round, c] : before_) {
    w.U64(round);
    Put(w, c);
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(file_).parent_path(), ec);
  return WriteFileAtomic(file_, w.Take());
}

}  // namespace edgebed
