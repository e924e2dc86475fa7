// A drill's verdict in Markdown (`--summary-md`): what a CI job summary or a pull request comment
// shows. The verdict first, then what failed, then the figures that explain it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

namespace detail {

// Text from backups, servers and tools as inert Markdown: one line, no markup, no HTML, and no
// table cell ended early by a '|'.
inline std::string markdown_text(const std::string& text) {
  std::string out;
  for (char c : printable(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\n': case '\r': case '\t': out += ' '; break;
      case '\\': case '`': case '*': case '_': case '[': case ']': case '|': case '#': case '~':
        out += '\\';
        out += c;
        break;
      default: out += c;
    }
  }
  return out;
}

inline const char* verdict_mark(exit_code code) {
  return code == exit_code::passed ? "✅" : code == exit_code::failed ? "❌" : "⚠️";
}

}  // namespace detail

/// The Markdown summary: a heading with the verdict, every stage and check that did not pass
/// (the first `listed`, then how many more), and a table of the drill's key figures.
inline std::string markdown_summary(const drill_result& result, std::size_t listed = 25) {
  using detail::markdown_text;
  exit_code code = result.verdict();
  std::ostringstream out;
  out << "### " << detail::verdict_mark(code) << " pgdrill " << markdown_text(result.scenario) << ": " << describe(code)
      << " (exit " << static_cast<int>(code) << ")\n\n";

  std::vector<const step_result*> not_passed;
  for (const auto* steps : {&result.stages, &result.checks})
    for (const auto& step : *steps)
      if (step.result == outcome::failed || step.result == outcome::error) not_passed.push_back(&step);
  if (!not_passed.empty()) {
    out << "**What did not pass:**\n\n";
    for (std::size_t index = 0; index < not_passed.size() && index < listed; ++index) {
      const auto& step = *not_passed[index];
      out << "- " << (step.result == outcome::failed ? "failed" : "could not run") << ": **" << markdown_text(step.name)
          << "**: " << markdown_text(step.message);
      if (!step.expected.empty()) out << " (expected " << markdown_text(step.expected) << ", got " << markdown_text(step.actual) << ")";
      out << "\n";
    }
    if (not_passed.size() > listed) out << "- and " << not_passed.size() - listed << " more (see the JUnit or JSON report)\n";
    out << "\n";
  }

  const auto& backup = result.backup;
  std::vector<std::pair<std::string, std::string>> rows;
  if (!backup.files.empty())
    rows.emplace_back("backup", detail::join(backup.files) + " (" + detail::bytes_text(static_cast<double>(backup.size_bytes)) +
                                    (backup.format.empty() ? "" : ", " + backup.format) +
                                    (backup.taken_at.empty() ? "" : ", taken " + backup.taken_at) + ")");
  if (!backup.source_version.empty())
    rows.emplace_back("dumped", "from PostgreSQL " + backup.source_version +
                                    (backup.pg_dump_version.empty() ? "" : " by pg_dump " + backup.pg_dump_version));
  if (!result.server.version.empty()) rows.emplace_back("restored into", "PostgreSQL " + result.server.version + " (" + result.server.provider + ")");
  rows.emplace_back("restore", result.restore.seconds ? detail::seconds_text(*result.restore.seconds) : "not completed");
  auto counts = count_outcomes(result.checks);
  rows.emplace_back("checks", std::to_string(counts.passed) + " passed, " + std::to_string(counts.failed) + " failed, " +
                                  std::to_string(counts.errors) + " errors, " + std::to_string(counts.skipped) + " not reached");
  if (const auto& coverage = result.coverage; coverage.measured)
    rows.emplace_back("coverage", std::to_string(coverage.tables.covered) + " of " + std::to_string(coverage.tables.total) + " tables");
  rows.emplace_back("drill", detail::seconds_text(result.seconds) + ", started " + result.started_at);
  out << "| | |\n| --- | --- |\n";
  for (const auto& [name, value] : rows) out << "| " << name << " | " << markdown_text(value) << " |\n";
  return out.str();
}

/// Write the summary (parents created). `--summary-md` appends when the file exists, so several
/// drills of one CI job share `$GITHUB_STEP_SUMMARY`.
inline void write_markdown_summary(const drill_result& result, const std::filesystem::path& file) {
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  std::ofstream out(file, std::ios::app);
  out << markdown_summary(result) << "\n";
  if (!out.flush()) throw could_not_verify("cannot write Markdown summary " + file.string());
}

}  // namespace pgdrill
