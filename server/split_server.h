// Split learning as a run mode (model slimsplit; private to server/): nodes run the slimmable
// encoder, the shared decoder here answers each batch with gradients (split_service.h).
#pragma once
#include <memory>
#include <string>

#include "server/mode_options.h"
#include "server/server_core.h"
#include "server/split_service.h"

namespace edgebed {

class SplitServer final : public ServerCore {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServerCore>> Create(const Scenario& sc, std::atomic<bool>* stop);
  Status Run() override;
  // Continues from output_dir's checkpoint: the decoder, its momentum, the encoders, the round.
  Status Resume() override;
  const char* mode_name() const override { return "split-learning run (model slimsplit)"; }

 private:
  SplitServer(const Scenario& scenario, std::atomic<bool>* stop) : ServerCore(CoreOptions(scenario), stop), sc(scenario) {}
  bool OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews&) override;
  void FillJoinAck(uint32_t index, wire::JoinAck* ack) override;
  bool SplitExpected(const std::string& from, const std::string& what);
  void OnSplitForward(const std::string& from, const wire::SplitForward& f);
  // Training batches wait here for one decoder step over several nodes (split.batch_nodes,
  // split.batch_wait_ms); AfterPoll answers them when every node still training has sent one, the
  // cap is reached, or the first has waited long enough.
  std::chrono::milliseconds AfterPoll() override;
  void AnswerQueued(size_t count);
  void OnSplitDone(const std::string& from, const wire::SplitDone& d);
  void RunSplitRound(uint32_t r, Clock::time_point run_start);
  // Inference passes on the lowest-index ready node: the scenario's controller, then (compare_fixed)
  // the fixed width over the same trace.
  json RunSplitInference();

  std::unique_ptr<SplitService> split;
  struct Queued {
    std::string from;
    wire::SplitForward f;
    Clock::time_point at;
  };
  std::vector<Queued> queue;
  uint32_t infer_pass = 0;  // split inference pass in progress (0 = none)
  const Scenario sc;  // this mode maps it to its pieces' options (mode_options.h)
};

}  // namespace edgebed
