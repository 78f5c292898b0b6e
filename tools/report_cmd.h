// `edgebed report DIR` (report.html and metrics.png of a run folder, again) and `edgebed compare
// RUN... [--out DIR]` (a table and overlaid curves of several runs: compare.html, compare.csv).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "record/compare.h"

namespace edgebed {

struct ReportCommands {
  CLI::App* report = nullptr;
  CLI::App* compare = nullptr;
  std::string report_dir;
  CompareOptions compare_options;
};

void AddReportCommands(CLI::App& app, ReportCommands* c);

// The exit code of the command given, or -1 when it was neither.
int RunReportCommands(ReportCommands& c);

}  // namespace edgebed
