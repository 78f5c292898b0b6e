// Plots drawn by gnuplot, fed their script on a pipe: no shell ever sees a path, a scenario name or
// any other text. Text enters a script only through GnuplotString, file paths only through
// GnuplotPath, so a name like "x'; system('rm -rf ~')" or "|cmd" stays a string.
#pragma once
#include <string>
#include <string_view>

#include "codecs/status.h"

namespace edgebed {

// `text` as a single-quoted gnuplot string: quotes doubled, control characters (a newline would end
// the command) replaced by '?'. Single-quoted strings take no backslash or backquote substitution.
std::string GnuplotString(std::string_view text);

// `path` made absolute and quoted, so gnuplot never takes it for '<command' (plot) or '|command'
// (set output).
std::string GnuplotPath(const std::string& path);

// Runs `gnuplot` (found on PATH, started with posix_spawnp, no shell) with `script` on its standard
// input; its messages go to `log_path`. Errors name gnuplot's exit code and the log.
[[nodiscard]] Status RunGnuplot(const std::string& script, const std::string& log_path);

}  // namespace edgebed
