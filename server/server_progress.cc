// What a run shows while it goes: the nodes' progress in a round, the time left, report.html.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "record/progress.h"
#include "record/report.h"
#include "server/server_core.h"

namespace edgebed {

void ServerCore::NoteProgress(const std::string& id, uint32_t round, float share) {
  NodeRecord* n = registry.Find(id);
  if (n == nullptr || round != rounds.round() || !(share >= 0.0f && share <= 1.0f)) return;  // NaN fails too
  n->progress_round = round;
  n->progress = share;
}

std::string ServerCore::RunTimeLeft(uint32_t r, double elapsed_s) const {
  if (r < first_round || r >= core.last_round) return "";
  const double left = TimeLeft(elapsed_s, r - first_round + 1, core.last_round - first_round + 1);
  return left < 0 ? "" : "; ~" + FormatDuration(left) + " left";
}

std::string ServerCore::RoundProgressLine(double round_elapsed_s) const {
  std::vector<float> shares;
  const auto pending = rounds.Pending();
  for (const auto& id : pending) {
    const NodeRecord* n = registry.Find(id);
    if (n != nullptr && n->progress_round == rounds.round()) shares.push_back(n->progress);
  }
  std::string line = fmt::format("{} {}/{}: {} of {} answered after {}", core.round_name, rounds.round(), core.last_round,
                                 rounds.accepted() + rounds.failures().size(),
                                 rounds.accepted() + rounds.failures().size() + pending.size(), FormatDuration(round_elapsed_s));
  if (shares.empty()) return line;
  std::sort(shares.begin(), shares.end());
  const float slowest = shares.front();
  line += fmt::format("; {} still training report {:.0f}-{:.0f}% done (median {:.0f}%)", shares.size(), 100.0f * slowest,
                      100.0f * shares.back(), 100.0f * shares[shares.size() / 2]);
  const double left = TimeLeft(round_elapsed_s, slowest, 1.0);
  if (left >= 0) line += ", ~" + FormatDuration(left) + " left in this " + core.round_name;
  return line;
}

void ServerCore::RefreshReport(bool finished) {
  constexpr double kReportEvery_s = 3.0;  // a refresh costs one gnuplot run (~0.1-0.3 s)
  std::lock_guard<std::mutex> lock(report_mu_);
  const Clock::time_point now = Clock::now();
  if (!finished && report_at_ != Clock::time_point{} && Since(report_at_) < kReportEvery_s) return;
  report_at_ = now;
  Status st = WriteReport(core.output_dir, finished ? ReportState::kFinished : ReportState::kRunning);
  if (!st.ok() && st.message() != report_warning_) spdlog::warn("report.html not refreshed: {}", st.message());
  report_warning_ = st.ok() ? "" : st.message();
}

}  // namespace edgebed
