// `edgebed sweep`: one scenario run once per value of a field; compare.html (record/compare.h) and one
// plot with a curve per value, legends with units.
#pragma once
#include <string>
#include <vector>

#include "scenarios/scenario.h"

namespace edgebed {

struct SweepOptions {
  std::string scenario_path;          // empty = the embedded default
  std::vector<std::string> overrides; // applied to every run
  std::string field;                  // e.g. channel.snr_db
  std::vector<std::string> values;    // TOML values: 0, 5, "digital" or bare words
  std::string out_dir;                // empty = <output_dir of the scenario>/sweep-<field>
  std::string x = "round";            // x axis: round | virtual_clock_s | elapsed_s
};

int RunSweep(const SweepOptions& opt, const std::string& exe);

// A legend entry with the unit the field's name ends with: ("channel.snr_db", "5") -> "snr_db = 5 dB".
std::string SweepLegend(const std::string& field, const std::string& value);

}  // namespace edgebed
