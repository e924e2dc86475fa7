// Writing a finished drill's reports: JUnit, JSON, Markdown, metrics and the history line, as the runner does, so
// library users get the same files. A report that cannot be written never loses the others.
#pragma once

#include <filesystem>
#include <optional>  // report paths a scenario may leave out
#include <string>
#include <vector>

#include <pgdrill/history.hpp>
#include <pgdrill/markdown.hpp>
#include <pgdrill/metrics.hpp>
#include <pgdrill/report.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>

namespace pgdrill {

/// Where a drill's reports go; an empty path is not written.
struct report_paths {
  std::filesystem::path junit, json, history;
  std::filesystem::path summary_md;  ///< Markdown verdict, appended to (CI job summaries)
  std::filesystem::path metrics;     ///< Prometheus text format, replaced whole
};

/// Each path as given (command line), else as the scenario's "reports" says; JUnit defaults to
/// pgdrill-reports/NAME.junit.xml.
inline report_paths report_paths_for(const scenario& plan, const report_paths& given) {
  auto choose = [](const std::filesystem::path& path, const std::optional<std::filesystem::path>& from_scenario,
                   const std::filesystem::path& fallback) {
    return !path.empty() ? path : from_scenario ? *from_scenario : fallback;
  };
  return {choose(given.junit, plan.junit, std::filesystem::path("pgdrill-reports") / (plan.name + ".junit.xml")),
          choose(given.json, plan.json_report, {}), choose(given.history, plan.history, {}),
          choose(given.summary_md, plan.summary_md, {}), choose(given.metrics, plan.metrics, {})};
}

/// What write_reports did: the files written, and why any others were not.
struct written_reports {
  std::vector<std::string> written;
  std::vector<std::string> problems;
};

inline written_reports write_reports(const drill_result& result, const report_paths& paths) {
  written_reports reports;
  auto attempt = [&](const std::filesystem::path& path, auto write) {
    if (path.empty()) return;
    try {
      write(path);
      reports.written.push_back(path.string());
    } catch (const std::exception& failure) {
      reports.problems.push_back(failure.what());
    }
  };
  attempt(paths.junit, [&](const std::filesystem::path& file) { write_junit(result, file); });
  attempt(paths.json, [&](const std::filesystem::path& file) { write_json_report(result, file); });
  attempt(paths.summary_md, [&](const std::filesystem::path& file) { write_markdown_summary(result, file); });
  attempt(paths.metrics, [&](const std::filesystem::path& file) { write_metrics(result, file, paths.history); });
  attempt(paths.history, [&](const std::filesystem::path& file) { append_history(file, history_entry_from(result)); });
  return reports;
}

}  // namespace pgdrill
