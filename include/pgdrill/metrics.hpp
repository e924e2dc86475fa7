// A drill's figures in the Prometheus text format (`--metrics`), for node_exporter's textfile
// collector: above all, when a restore last succeeded, the figure auditors ask for.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>  // a last passing drill may not be known
#include <sstream>
#include <string>
#include <utility>

#include <pgdrill/detail/time.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/history.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

namespace detail {

// A label value as the text format quotes it.
inline std::string metric_label(const std::string& value) {
  std::string out;
  for (char c : printable(value)) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

inline std::string metric_number(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// Writes one metric family: HELP, TYPE gauge, and its samples.
class metric_family_writer {
 public:
  metric_family_writer(std::ostringstream& out, const std::string& scenario) : out_(out), scenario_(metric_label(scenario)) {}

  void family(const std::string& name, const std::string& help) {
    name_ = name;
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n";
  }
  void sample(double value, const std::string& extra_labels = "") {
    out_ << name_ << "{scenario=\"" << scenario_ << "\"" << extra_labels << "} " << metric_number(value) << "\n";
  }
  void one(const std::string& name, const std::string& help, double value) {
    family(name, help);
    sample(value);
  }

 private:
  std::ostringstream& out_;
  std::string scenario_, name_;
};

}  // namespace detail

/// The metrics of one drill. `last_passing_at` is when the scenario's last passing drill started
/// (this one's start when it passed); without one the family is left out, never written as 0.
inline std::string metrics_text(const drill_result& result, const std::optional<std::string>& last_passing_at) {
  std::ostringstream out;
  detail::metric_family_writer metric(out, result.scenario);
  exit_code code = result.verdict();
  metric.one("pgdrill_drill_exit_code", "Exit code of the latest drill: 0 passed, 1 the backup is broken, 2 could not verify.",
             static_cast<int>(code));
  metric.one("pgdrill_drill_passed", "1 when the latest drill passed, else 0.", code == exit_code::passed ? 1 : 0);
  if (auto started = timestamp_in_name(result.started_at))
    metric.one("pgdrill_drill_timestamp_seconds", "When the latest drill started, in Unix time.", static_cast<double>(*started));
  if (auto passed = last_passing_at ? timestamp_in_name(*last_passing_at) : std::nullopt)
    metric.one("pgdrill_last_success_timestamp_seconds", "When the last passing drill started, in Unix time: the backups were last proven restorable then.",
               static_cast<double>(*passed));
  metric.one("pgdrill_drill_duration_seconds", "How long the latest drill took.", result.seconds);
  if (result.restore.seconds)
    metric.one("pgdrill_restore_duration_seconds", "How long the latest drill's restore took (absent when it did not complete).",
               *result.restore.seconds);
  if (!result.backup.files.empty())
    metric.one("pgdrill_backup_size_bytes", "Size of the backup the latest drill restored.", static_cast<double>(result.backup.size_bytes));
  if (auto taken = timestamp_in_name(result.backup.taken_at))
    metric.one("pgdrill_backup_timestamp_seconds", "When the drilled backup was taken, in Unix time.", static_cast<double>(*taken));
  auto counts = count_outcomes(result.checks);
  metric.family("pgdrill_checks", "Checks of the latest drill by result.");
  for (const auto& [result_name, count] : {std::pair{"passed", counts.passed}, {"failed", counts.failed}, {"error", counts.errors},
                                           {"skipped", counts.skipped}})
    metric.sample(count, std::string(",result=\"") + result_name + "\"");
  if (!result.table_rows.empty()) {
    metric.family("pgdrill_table_rows", "Rows the latest drill counted per table.");
    for (const auto& [table, rows] : result.table_rows)
      metric.sample(static_cast<double>(rows), ",table=\"" + detail::metric_label(table) + "\"");
  }
  return out.str();
}

/// When the scenario last passed: this drill if it did, else the history's newest passing line.
inline std::optional<std::string> last_passing_drill_at(const drill_result& result, const std::filesystem::path& history) {
  if (result.verdict() == exit_code::passed) return result.started_at;
  if (history.empty() || !std::filesystem::exists(history)) return std::nullopt;
  std::optional<std::string> at;
  for (const auto& entry : read_history(history, result.scenario))
    if (entry.passed()) at = entry.at;
  return at;
}

/// Write the metrics file whole or not at all: into a temporary file beside it, then renamed,
/// so the textfile collector never reads half a file.
inline void write_metrics(const drill_result& result, const std::filesystem::path& file, const std::filesystem::path& history) {
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  auto staging = file;
  staging += "." + std::to_string(::getpid()) + ".tmp";  // not *.prom: the collector skips it
  {
    std::ofstream out(staging);
    out << metrics_text(result, last_passing_drill_at(result, history));
    if (!out.flush()) {
      std::filesystem::remove(staging, ignored);
      throw could_not_verify("cannot write metrics " + file.string());
    }
  }
  std::error_code renamed;
  std::filesystem::rename(staging, file, renamed);
  if (renamed) {
    std::filesystem::remove(staging, ignored);
    throw could_not_verify("cannot write metrics " + file.string());
  }
}

}  // namespace pgdrill
