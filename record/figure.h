// Figures for run reports and comparisons: line plots with units on both axes and a legend, drawn
// by gnuplot (plot.h: no shell) as SVG that an HTML page inlines. The data travel inside the script
// as datablocks, so no temporary data file is written and no text is read back as a command.
#pragma once
#include <string>
#include <vector>

#include "codecs/status.h"

namespace edgebed {

struct Series {
  std::string label;          // the legend entry
  std::vector<double> x, y;   // same length; NaN leaves a gap
  bool points_only = false;   // scattered values (per node) rather than a curve
};

struct Figure {
  std::string key;            // the figure's id in a page: [a-z0-9_]
  std::string title;
  std::string x_label, y_label;  // with units: "round", "virtual time (s)"
  std::vector<Series> series;
  bool log_y = false;         // values <= 0 are left out on a log axis
  bool log_x = false;         // rates spanning decades; points at x <= 0 are left out
  bool integer_x = true;      // rounds, epochs, node indices: tics on whole numbers
  bool y_from_zero = false;   // counts, bytes, times: the y axis starts at 0
  bool HasData() const;
};

struct SvgOptions {
  int width_px = 540, height_px = 360;
  std::string work_dir;       // gnuplot writes each figure's SVG here before it is read back
  std::string log_path;       // gnuplot's messages
};

// One SVG document per figure (in order; a figure without data gets ""), from one gnuplot run.
// Errors name gnuplot's log or the SVG file that could not be read.
[[nodiscard]] Result<std::vector<std::string>> RenderSvgs(const std::vector<Figure>& figures, const SvgOptions& options);

// `svg` as an element to inline in an HTML page: the XML prolog dropped and every id prefixed with
// `prefix`, so that the figures of one page do not share ids.
std::string InlineSvg(const std::string& svg, const std::string& prefix);

// The unit a field's name ends with ("channel.snr_db" -> "dB", "elapsed_s" -> "s"), or "".
std::string FieldUnit(const std::string& field);

// Text with the characters that would end an SVG or HTML text node ('<', '>', '&') replaced: labels
// come from scenario names and run folders, which a user wrote.
std::string PlainLabel(const std::string& text);

}  // namespace edgebed
