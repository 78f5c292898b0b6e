// Split learning's state (private to server/): the checkpoint's bytes and the saved models.
#include "codecs/state_bytes.h"
#include "server/split_service_impl.h"

namespace edgebed {

using json = nlohmann::json;

Status SplitService::SaveModels(const std::string& dir) const {
  const Impl& m = *impl_;
  if (m.opt.split.heads == "average") {
    (void)m.eval_enc->SetParams(m.head);
    EDGEBED_RETURN_IF_ERROR(m.eval_enc->Save(dir + "/final_encoder.pt"));
  }
  return m.dec->Save(dir + "/final_decoder.pt");
}

Result<std::string> SplitService::SaveState() const {
  const Impl& m = *impl_;
  auto dec = m.dec->SaveTrainingState();
  if (!dec.ok()) return dec.status();
  StateWriter w;
  w.Bytes(dec.value());
  w.Floats(m.head.flat);
  w.U64(m.last_heads.size());
  for (const auto& [i, p] : m.last_heads) {
    w.U64(i);
    w.Floats(p.flat);
  }
  w.Bytes(m.last_eval.is_null() ? std::string() : m.last_eval.dump());
  return w.Take();
}

Status SplitService::LoadState(const std::string& state) {
  Impl& m = *impl_;
  StateReader r(state, "the split-learning state");
  ParamSet head = m.head;
  std::string dec, eval;
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&dec));
  EDGEBED_RETURN_IF_ERROR(r.Floats(&head.flat, head.flat.size()));
  uint64_t n = 0;
  EDGEBED_RETURN_IF_ERROR(r.U64(&n));
  if (n > m.opt.nodes)
    return Status::Corruption("the split-learning state holds " + std::to_string(n) + " encoders for " +
                              std::to_string(m.opt.nodes) + " nodes");
  std::map<uint32_t, ParamSet> last;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t i = 0;
    EDGEBED_RETURN_IF_ERROR(r.U64(&i));
    ParamSet p = m.head;
    EDGEBED_RETURN_IF_ERROR(r.Floats(&p.flat, p.flat.size()));
    if (i >= m.opt.nodes) return Status::Corruption("the split-learning state holds an encoder of node " + std::to_string(i));
    last[static_cast<uint32_t>(i)] = std::move(p);
  }
  EDGEBED_RETURN_IF_ERROR(r.Bytes(&eval));
  if (!r.done()) return Status::Corruption("the split-learning state has bytes past its end");
  EDGEBED_RETURN_IF_ERROR(m.dec->LoadTrainingState(dec));
  m.head = std::move(head);
  m.last_heads = std::move(last);
  m.last_eval = eval.empty() ? json(nullptr) : json::parse(eval, nullptr, false);
  m.resend_heads = true;
  return Status::Ok();
}

}  // namespace edgebed
