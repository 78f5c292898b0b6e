// One self-contained HTML page (report.html, compare.html): inline SVG figures and tables, no script
// or style from the network. Every piece of text is escaped; only InlineSvg output enters as markup.
// After loading, a small inline script marks each figure rendered (an SVG laid out with its curves)
// and counts them on <body data-figures data-rendered>, which headless Chromium's DOM dump shows.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "record/figure.h"

namespace edgebed {

std::string HtmlEscape(const std::string& text);

class HtmlPage {
 public:
  explicit HtmlPage(std::string title);
  void Heading(const std::string& text);
  void Paragraph(const std::string& text);
  // A table: the first row is the header.
  void Table(const std::vector<std::vector<std::string>>& rows);
  // A JSON object as a two-column table (nested values as compact JSON).
  void KeyValues(const nlohmann::json& object);
  void Preformatted(const std::string& text);
  // The figures with their SVG documents (RenderSvgs, same order); a figure without an SVG is left
  // out, and `note` (why there are no plots) is shown instead when none has one.
  void Figures(const std::vector<Figure>& figures, const std::vector<std::string>& svgs, const std::string& note);
  std::string Render() const;

 private:
  std::string title_, body_;
};

}  // namespace edgebed
