#include "record/figure.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "record/files.h"
#include "record/plot.h"

namespace edgebed {
namespace {

bool Plottable(double y, bool log_y) { return std::isfinite(y) && (!log_y || y > 0.0); }

bool SeriesHasData(const Series& s, bool log_y) {
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
    if (std::isfinite(s.x[i]) && Plottable(s.y[i], log_y)) return true;
  return false;
}

std::string Number(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

bool Figure::HasData() const {
  for (const auto& s : series)
    if (SeriesHasData(s, log_y)) return true;
  return false;
}

std::string FieldUnit(const std::string& field) {
  static const std::pair<const char*, const char*> units[] = {
      {"_db", "dB"}, {"_kbps", "kbit/s"}, {"_ms", "ms"}, {"_s", "s"}, {"_mb", "MB"}, {"_kb", "KiB"},
      {"_kb_max", "KiB"}, {"_hz", "Hz"}, {"_j", "J"}, {"_w", "W"}, {"_bytes", "bytes"}, {"_gflops", "GFLOP/s"}};
  for (const auto& [suffix, unit] : units) {
    const std::string sfx = suffix;
    if (field.size() > sfx.size() && field.compare(field.size() - sfx.size(), sfx.size(), sfx) == 0) return unit;
  }
  return "";
}

std::string PlainLabel(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '<' ? '(' : c == '>' ? ')' : c == '&' ? '+' : c;
  return out;
}

Result<std::vector<std::string>> RenderSvgs(const std::vector<Figure>& figures, const SvgOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec) return Status::IoError(options.work_dir + ": " + ec.message());
  std::string gp = "set terminal svg size " + std::to_string(options.width_px) + "," + std::to_string(options.height_px) +
                   " dynamic noenhanced font 'sans,11' background '#ffffff'\n"
                   "set grid\nset key below\nset datafile missing 'NaN'\n";
  std::vector<std::string> files(figures.size());
  for (size_t f = 0; f < figures.size(); ++f) {
    const Figure& fig = figures[f];
    if (!fig.HasData()) continue;
    std::string plot;
    double x_min = INFINITY, x_max = -INFINITY;
    for (const auto& ser : fig.series)
      for (double x : ser.x)
        if (std::isfinite(x)) x_min = std::min(x_min, x), x_max = std::max(x_max, x);
    for (size_t s = 0; s < fig.series.size(); ++s) {
      const Series& ser = fig.series[s];
      if (!SeriesHasData(ser, fig.log_y)) continue;
      const std::string block = "$f" + std::to_string(f) + "s" + std::to_string(s);
      gp += block + " << EOD\n";
      for (size_t i = 0; i < ser.x.size() && i < ser.y.size(); ++i)
        if (!fig.log_x || ser.x[i] > 0.0) gp += Number(ser.x[i]) + " " + (Plottable(ser.y[i], fig.log_y) ? Number(ser.y[i]) : "NaN") + "\n";
      gp += "EOD\n";
      plot += std::string(plot.empty() ? "plot " : ", ") + block + " using 1:2 with " +
              (ser.points_only ? "points pt 7 ps 0.6" : "linespoints pt 7 ps 0.5") + " title " +
              GnuplotString(PlainLabel(ser.label));
    }
    files[f] = options.work_dir + "/" + fig.key + ".svg";
    gp += "set output " + GnuplotPath(files[f]) + "\n";
    gp += "set title " + GnuplotString(PlainLabel(fig.title)) + "\n";
    gp += "set xlabel " + GnuplotString(PlainLabel(fig.x_label)) + "\n";
    gp += "set ylabel " + GnuplotString(PlainLabel(fig.y_label)) + "\n";
    gp += fig.log_y ? "set logscale y\nset format y '%.0e'\n" : "unset logscale y\nset format y '% h'\n";
    gp += fig.log_x ? "set logscale x\n" : "unset logscale x\n";
    gp += fig.integer_x && !fig.log_x ? "set xtics " + std::to_string(std::max(1, static_cast<int>(std::ceil((x_max - x_min) / 10.0)))) + "\n"
                        : "set xtics autofreq\n";
    gp += fig.y_from_zero && !fig.log_y ? "set yrange [0:*]\n" : "set yrange [*:*]\n";
    gp += plot + "\n";
  }
  gp += "unset output\n";
  std::vector<std::string> svgs(figures.size());
  bool any = false;
  for (const auto& f : files) any |= !f.empty();
  if (!any) return svgs;
  EDGEBED_RETURN_IF_ERROR(RunGnuplot(gp, options.log_path));
  for (size_t f = 0; f < files.size(); ++f) {
    if (files[f].empty()) continue;
    EDGEBED_ASSIGN_OR_RETURN(svgs[f], ReadFile(files[f]));
  }
  return svgs;
}

std::string InlineSvg(const std::string& svg, const std::string& prefix) {
  std::string s = svg;
  if (s.rfind("<?xml", 0) == 0) s.erase(0, s.find("?>") == std::string::npos ? 0 : s.find("?>") + 2);
  static const std::regex id_attr("id=\"([^\"]*)\""), ref("(href=\"#|url\\(#)");
  s = std::regex_replace(s, id_attr, "id=\"" + prefix + "$1\"");
  return std::regex_replace(s, ref, "$1" + prefix);
}

}  // namespace edgebed
