#include "server/inference_report.h"

#include <spdlog/spdlog.h>

#include <map>

#include "record/files.h"
#include "record/plot.h"

namespace edgebed {

using json = nlohmann::json;

Result<json> WriteInferenceReport(const std::string& dir, const std::vector<InferRow>& all, double deadline_ms,
                                  double fixed_width) {
  LineFile csv;
  EDGEBED_RETURN_IF_ERROR(csv.Open(dir + "/inference.csv", /*append=*/false));
  EDGEBED_RETURN_IF_ERROR(csv.Append("pass,controller,request,t_s,kbps,width,bytes,node_ms,air_ms,server_ms,latency_ms,"
                                     "deadline_met,correct,samples,bit_errors"));
  std::map<uint32_t, std::vector<const InferRow*>> by_pass;
  for (const auto& r : all) {
    EDGEBED_RETURN_IF_ERROR(csv.Append(fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", r.pass, r.controller,
                                                   r.request, r.t_s, r.kbps, r.width, r.bytes, r.node_ms, r.air_ms,
                                                   r.server_ms, r.latency_ms, r.met ? 1 : 0, r.correct, r.samples,
                                                   r.bit_errors)));
    by_pass[r.pass].push_back(&r);
  }
  csv.Close();
  json passes = json::array();
  for (const auto& [pass, rows] : by_pass) {
    size_t met = 0, correct = 0, samples = 0;
    double width = 0, latency = 0;
    for (const auto* r : rows) {
      met += r->met;
      correct += r->correct;
      samples += r->samples;
      width += r->width;
      latency += r->latency_ms;
    }
    const double k = static_cast<double>(rows.size());
    passes.push_back({{"pass", pass},
                      {"controller", rows.front()->controller},
                      {"requests", rows.size()},
                      {"deadline_met", static_cast<double>(met) / k},
                      {"accuracy", samples ? static_cast<double>(correct) / static_cast<double>(samples) : 0.0},
                      {"mean_width", width / k},
                      {"mean_latency_ms", latency / k}});
  }
  json out = {{"deadline_ms", deadline_ms}, {"passes", passes}};
  // Where the fixed width missed, how often the adaptive controller met the deadline.
  if (by_pass.size() >= 2) {
    const auto& a = by_pass.begin()->second;
    const auto& f = std::next(by_pass.begin())->second;
    size_t missed = 0, rescued = 0;
    for (size_t i = 0; i < std::min(a.size(), f.size()); ++i) {
      if (f[i]->met) continue;
      ++missed;
      rescued += a[i]->met;
    }
    out["fixed_missed"] = missed;
    out["adaptive_met_where_fixed_missed"] = missed ? static_cast<double>(rescued) / static_cast<double>(missed) : 1.0;
  }
  // width, bandwidth and latency over time, one curve per pass
  {
    const std::string csv = GnuplotPath(dir + "/inference.csv");
    std::string gp = "set terminal pngcairo noenhanced size 1000,900 font 'sans,10'\n"
                     "set output " + GnuplotPath(dir + "/inference.png") + "\n"
                     "set datafile separator ','\n"
                     "set multiplot layout 3,1 title " +
                     GnuplotString("split inference under the bandwidth trace (deadline " +
                                   fmt::format("{:g}", deadline_ms) + " ms)") + "\n"
                     "set grid; set xlabel 'time [s]'\n"
                     "set ylabel 'link rate [kbit/s]'\n"
                     "plot " + csv + " every ::1 using ($1==1?$4:1/0):5 with steps lw 2 title 'bandwidth'\n"
                     "set ylabel 'encoder width'; set yrange [0:1.1]\n";
    std::string plot = "plot ";
    for (const auto& [pass, rows] : by_pass)
      plot += (plot.size() > 5 ? ", " : "") + csv + " every ::1 using ($1==" + std::to_string(pass) +
              "?$4:1/0):6 with steps lw 2 title " +
              GnuplotString(rows.front()->controller +
                            (rows.front()->controller == "fixed" ? " " + fmt::format("{:g}", fixed_width) : ""));
    gp += plot + "\nset ylabel 'latency [ms]'; set autoscale y\n";
    std::string lat = "plot ";
    for (const auto& [pass, rows] : by_pass)
      lat += (lat.size() > 5 ? ", " : "") + csv + " every ::1 using ($1==" + std::to_string(pass) +
             "?$4:1/0):11 with points pt 7 ps 0.4 title " + GnuplotString(rows.front()->controller);
    gp += lat + ", " + fmt::format("{:g}", deadline_ms) +
          " with lines dt 2 lc 'black' title 'deadline'\nunset multiplot\n";
    Status st = RunGnuplot(gp, dir + "/logs/gnuplot-inference.log");
    if (!st.ok()) spdlog::warn("no inference plot: {}", st.message());
  }
  return out;
}

}  // namespace edgebed
