#include "record/html_page.h"

namespace edgebed {

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

HtmlPage::HtmlPage(std::string title) : title_(std::move(title)) {}

void HtmlPage::Heading(const std::string& text) { body_ += "<h2>" + HtmlEscape(text) + "</h2>\n"; }

void HtmlPage::Paragraph(const std::string& text) { body_ += "<p>" + HtmlEscape(text) + "</p>\n"; }

void HtmlPage::Table(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  body_ += "<table>\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    body_ += "<tr>";
    for (const auto& cell : rows[r]) body_ += (r == 0 ? "<th>" : "<td>") + HtmlEscape(cell) + (r == 0 ? "</th>" : "</td>");
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void HtmlPage::KeyValues(const nlohmann::json& object) {
  std::vector<std::vector<std::string>> rows = {{"field", "value"}};
  for (const auto& [k, v] : object.items()) rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
  Table(rows);
}

void HtmlPage::Preformatted(const std::string& text) { body_ += "<pre>" + HtmlEscape(text) + "</pre>\n"; }

void HtmlPage::Figures(const std::vector<Figure>& figures, const std::vector<std::string>& svgs, const std::string& note) {
  bool any = false;
  for (size_t i = 0; i < figures.size() && i < svgs.size(); ++i) {
    if (svgs[i].empty()) continue;
    any = true;
    body_ += "<figure id=\"fig-" + HtmlEscape(figures[i].key) + "\" data-figure=\"" + HtmlEscape(figures[i].key) + "\">\n" +
             InlineSvg(svgs[i], figures[i].key + "-") + "\n</figure>\n";
  }
  if (!any && !note.empty()) Paragraph(note);
}

std::string HtmlPage::Render() const {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + HtmlEscape(title_) +
         "</title>\n<style>\n"
         "body{font-family:sans-serif;margin:1.5em;max-width:1150px;color:#222}\n"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;max-width:900px;overflow-wrap:anywhere;"
         "font-size:90%}\nth{background:#eee}\nfigure{display:inline-block;margin:.5em}\n"
         "figure{width:540px;height:360px}\nfigure svg{width:540px;height:360px}\n"
         "pre{background:#f6f6f6;padding:.5em;font-size:85%;overflow:auto;max-height:30em}\n"
         "</style>\n</head>\n<body>\n<h1>" + HtmlEscape(title_) + "</h1>\n" + body_ +
         "<script>\n"
         "window.addEventListener('load', function () {\n"
         "  var figs = document.querySelectorAll('figure[data-figure]'), ok = 0;\n"
         "  figs.forEach(function (f) {\n"
         "    var s = f.querySelector('svg'), b = s ? s.getBoundingClientRect() : null;\n"
         "    var drawn = s ? s.querySelectorAll('path').length : 0;\n"
         "    var good = b && b.width > 100 && b.height > 100 && drawn > 0;\n"
         "    f.setAttribute('data-rendered', good ? 'yes' : 'no');\n"
         "    if (good) ok++;\n"
         "  });\n"
         "  document.body.setAttribute('data-figures', figs.length);\n"
         "  document.body.setAttribute('data-rendered', ok);\n"
         "});\n</script>\n</body>\n</html>\n";
}

}  // namespace edgebed
