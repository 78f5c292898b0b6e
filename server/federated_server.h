// Federated rounds (private to server/): select -> fit_ins -> collect fit_res (each update carried by
// the uplink, or held by the OTA receiver until the round closes) -> aggregate with the strategy ->
// evaluate on the test set while the next round trains -> write the row, then the checkpoint.
#pragma once
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "channel/uplink.h"
#include "server/async_schedule.h"
#include "codecs/rng.h"
#include "server/eval_worker.h"
#include "server/ota_receiver.h"
#include "server/mode_options.h"
#include "server/server_core.h"
#include "splitnets/learner.h"

namespace edgebed {

class FederatedServer final : public ServerCore {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ServerCore>> Create(const Scenario& sc, std::atomic<bool>* stop);
  Status Run() override;
  Status Resume() override;
  const char* mode_name() const override { return "federated run"; }
  const ParamSet& global_model() const override { return global; }

 private:
  FederatedServer(const Scenario& scenario, std::atomic<bool>* stop) : ServerCore(CoreOptions(scenario), stop), sc(scenario) {}
  bool OnModeMessage(const std::string& from, const wire::Envelope& env, const wire::FrameViews& attached) override;
  void FillJoinAck(uint32_t index, wire::JoinAck* ack) override;
  void OnNodeError(const std::string& from, const wire::Error& e) override;

  // ---- receiving updates (federated_updates.cc) --------------------------------------------------
  void OnFitRes(const std::string& from, const wire::FitRes& res, const wire::FrameViews& attached);
  // A refused update: counted, logged, answered BAD_TENSOR naming the field, the node's round failed.
  void RejectUpdate(const std::string& from, const std::string& m);
  bool OnTime(const std::string& from, uint64_t res_bytes, FitResult* r);
  // The upload's virtual seconds and radio energy: the channel's airtime in `l` where it models one,
  // else the frame's bits over the node's uplink rate.
  std::pair<double, double> UploadCost(const NodeRecord* rec, uint32_t index, uint64_t frame_bytes,
                                       const LinkAccounting& l) const;
  void Answered(const std::string& id, const FitResult& r);
  void AddReport(const wire::LinkReport& l);
  static Status ApplyErasures(const wire::FitRes& res, std::vector<float>* v);
  void OnRelayedAggregate(const std::string& from, const wire::FitRes& res, FitResult r);
  void OnEvaluateRes(const std::string& from, const wire::EvaluateRes& res);

  // ---- rounds (federated_server.cc) ---------------------------------------------------------------
  std::vector<Candidate> Candidates(uint32_t r);
  json LinkJson() const;
  // The strategy's federated evaluation of round r's model: its nodes asked, their answers combined.
  json FederatedEvaluate(uint32_t r);
  EvalStats Evaluate(const ParamSet& params);
  void EvaluateAndWrite(json row, bool async);
  void WaitEval() { eval_worker.Wait(); }
  void RunRound(uint32_t r, Clock::time_point run_start);
  void FillFitIns(uint32_t r, wire::FitIns* ins);
  void FillNodeFitIns(uint32_t r, uint32_t index, uint64_t seed, wire::FitIns* ins);
  json RoundRow(uint32_t r, size_t selected, size_t participants, bool aggregated, double aggregate_s, double wall,
                Clock::time_point run_start);
  void ResetRoundAccounting();
  bool Aggregate(uint32_t r);

  // ---- FedBuff: asynchronous steps (federated_async.cc) --------------------------------------------
  void RunStep(uint32_t step, Clock::time_point run_start);
  // Keeps ceil(fraction x nodes) nodes training: sends fit_ins of `step` to idle nodes drawn at random.
  void TopUp(uint32_t step);
  bool Dispatch(const std::string& id, uint32_t step);
  // A fit_res of a job in flight: carried by the uplink, then handed to the schedule.
  void OnAsyncFitRes(const std::string& from, const wire::FitRes& res, uint64_t res_bytes, FitResult r);
  // Jobs whose node failed since the last look (the core failed it: gone, silent, left, error).
  void CollectAsyncFailures();
  // A completed job in completion order: its update weighed by staleness and folded into the strategy.
  void ApplyJob(AsyncJob job);

  std::unique_ptr<Learner> learner;
  std::unique_ptr<Strategy> strategy;
  std::unique_ptr<Uplink> uplink;
  std::unique_ptr<OtaReceiver> ota_;  // null unless the uplink superposes
  std::unique_ptr<AsyncSchedule> async_;  // FedBuff's jobs in flight; null for synchronous rounds
  uint64_t async_seq_ = 0;                // jobs sent so far (a job's seed and tie-break)
  uint64_t model_version_ = 0;            // server steps applied (a job's staleness is counted against it)
  bool async_over_ = false;               // the last step is done: late answers are expected, and dropped
  Dataset test;
  ParamSet global;
  Rng select_rng;
  std::vector<uint64_t> assigned_samples;  // per node index: its partition's size (caps claimed counts)
  uint64_t aggregated_rounds = 0;          // rounds (of this process) whose update changed the model
  uint32_t backbone_crc32 = 0;             // transfer learning: the backbone file every node must have
  std::string module_bytes;                // model torchscript: the module file, sent to every node on join
  uint64_t train_rows = 0;                 // training rows in the data plan (a node's files must agree)

  // The round in progress.
  double train_time_max_s = 0.0;
  uint64_t peak_train_bytes_max = 0;  // the most training memory a participant reported this round
  uint64_t kept_for_backward_max = 0;
  double train_loss_sum = 0.0;
  uint64_t samples_sum = 0;
  LinkAccounting link;
  double virtual_round_s = 0.0, virtual_clock_s = 0.0;  // the round's and the run's virtual time
  double energy_compute_j = 0.0, energy_radio_j = 0.0;
  size_t stragglers = 0, over_committed = 0, over_commit_target = 0;
  json ota_info;
  std::vector<std::string> answered_ids;  // this round's participants, in order of answer
  // FedBuff's step: updates applied, their staleness, the jobs sent, and the step's uplink bytes.
  size_t step_applied = 0, step_sent = 0;
  json step_updates, step_failures;
  uint64_t step_uplink_bytes = 0;

  // Federated evaluation (Flower's configure_evaluate / aggregate_evaluate).
  std::set<std::string> eval_pending;
  std::vector<EvaluateResult> eval_results;

  EvalWorker eval_worker;  // last member: its thread stops before the state it uses goes
  const Scenario sc;  // this mode maps it to its pieces' options (mode_options.h)
};

}  // namespace edgebed
