// Reports of a drill: the console (text, colour, progress, JSON logs), JUnit XML and JSON.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <pgdrill/detail/time.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

namespace detail {

// JUnit wants a plain decimal number of seconds.
inline std::string junit_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", seconds);
  return text;
}

inline const char* console_tag(outcome value) {
  switch (value) {
    case outcome::passed: return "PASS ";
    case outcome::failed: return "FAIL ";
    case outcome::error: return "ERROR";
    case outcome::skipped: return "SKIP ";
  }
  return "ERROR";
}

}  // namespace detail

/// One console line for a stage or check, e.g. "  PASS   restore   1.20s  pg_restore restored ...".
inline std::string console_line(const step_result& step) {
  char name[40];
  std::snprintf(name, sizeof name, "%-32s", step.name.c_str());
  return std::string("  ") + detail::console_tag(step.result) + "  " + name + " " + detail::seconds_text(step.seconds) +
         "  " + step.message;
}

/// The closing lines: the stage that stopped the drill (with the tool's output unless `brief`),
/// what the restore tolerated, the failed checks again (a long drill's first lines are far up),
/// coverage, and the verdict with its counts. `brief` (--quiet) keeps what failed and the verdict.
inline void print_verdict(std::ostream& out, const drill_result& result, bool brief = false) {
  auto counts = count_outcomes(result.checks);
  for (const auto& stage : result.stages)
    if (stage.result == outcome::failed || stage.result == outcome::error) {
      out << (brief ? "" : "\n") << stage.name << ": " << stage.message << "\n";
      if (!brief && !stage.detail.empty()) out << stage.detail << (stage.detail.back() == '\n' ? "" : "\n");
    }
  const auto& tolerated = result.restore.tolerated;
  for (std::size_t index = 0; !brief && index < tolerated.size() && index < 5; ++index) out << "tolerated: " << tolerated[index] << "\n";
  if (!brief && tolerated.size() > 5) out << "tolerated: " << tolerated.size() - 5 << " more (see the JSON report)\n";
  for (const auto& check : result.checks)
    if (check.result == outcome::failed || check.result == outcome::error) out << console_line(check) << "\n";
  if (const auto& coverage = result.coverage; coverage.measured && !brief)
    out << "coverage: " << coverage.tables.covered << " of " << coverage.tables.total << " tables, "
        << coverage.large_objects.covered << " of " << coverage.large_objects.total << " large objects, "
        << coverage.sequences.covered << " of " << coverage.sequences.total << " sequences, " << coverage.materialized_views.covered
        << " of " << coverage.materialized_views.total << " materialized views checked\n";
  exit_code code = result.verdict();
  out << "verdict: " << describe(code) << " (exit " << static_cast<int>(code) << ") - checks: " << counts.passed
      << " passed, " << counts.failed << " failed, " << counts.errors << " errors, " << counts.skipped << " skipped; "
      << detail::seconds_text(result.seconds) << "\n";
}

/// Write the JUnit XML file (parents created). Mapping: one <testsuite> per drill with
/// <properties>; a <testcase> per stage and per assertion; failed = <failure>, could not run =
/// <error>, not reached = <skipped message=...>. Names are stable from run to run.
inline void write_junit(const drill_result& result, const std::filesystem::path& file) {
  pugi::xml_document document;
  auto declaration = document.append_child(pugi::node_declaration);
  declaration.append_attribute("version") = "1.0";
  declaration.append_attribute("encoding") = "UTF-8";

  int tests = 0, failures = 0, errors = 0, skipped = 0;
  for (const auto* list : {&result.stages, &result.checks})
    for (const auto& step : *list) {
      ++tests;
      failures += step.result == outcome::failed;
      errors += step.result == outcome::error;
      skipped += step.result == outcome::skipped;
    }
  // A drill that could not verify must never look green, even in a consumer that ignores
  // skipped: it always carries at least one <error>.
  bool add_verdict_error = result.verdict() == exit_code::not_verified && errors == 0;
  if (add_verdict_error) ++tests, ++errors;

  auto suites = document.append_child("testsuites");
  suites.append_attribute("name") = "pgdrill";
  auto suite = suites.append_child("testsuite");
  for (auto node : {suites, suite}) {
    if (node == suite) node.append_attribute("name") = result.scenario.c_str();
    node.append_attribute("tests") = tests;
    node.append_attribute("failures") = failures;
    node.append_attribute("errors") = errors;
    node.append_attribute("skipped") = skipped;
    node.append_attribute("time") = detail::junit_seconds(result.seconds).c_str();
  }
  suite.append_attribute("timestamp") = result.started_at.c_str();
  auto properties = suite.append_child("properties");
  for (const auto& [name, value] : properties_of(result)) {
    auto property = properties.append_child("property");
    property.append_attribute("name") = name.c_str();
    property.append_attribute("value") = detail::printable(value).c_str();
  }
  const std::string classname = "pgdrill." + result.scenario;
  auto add_case = [&](const step_result& step, const std::string& group) {
    auto testcase = suite.append_child("testcase");
    testcase.append_attribute("classname") = (classname + "." + group).c_str();
    testcase.append_attribute("name") = detail::printable(step.name).c_str();
    testcase.append_attribute("time") = detail::junit_seconds(step.seconds).c_str();
    const char* element = step.result == outcome::failed ? "failure"
                          : step.result == outcome::error ? "error"
                          : step.result == outcome::skipped ? "skipped"
                                                             : nullptr;
    if (element) {
      auto node = testcase.append_child(element);
      node.append_attribute("message") = detail::printable(step.message).c_str();
      if (step.result != outcome::skipped) node.append_attribute("type") = step.kind.c_str();
      std::string body = step.detail;
      if (!step.expected.empty()) body = "expected: " + step.expected + "\nactual: " + step.actual + "\n" + body;
      if (!body.empty()) node.text() = detail::printable(body).c_str();
    } else if (!step.message.empty()) {
      testcase.append_child("system-out").text() = detail::printable(step.message + (step.detail.empty() ? "" : "\n" + step.detail)).c_str();
    }
  };
  for (const auto& stage : result.stages) add_case(stage, "stage");
  for (const auto& check : result.checks) add_case(check, "check");
  if (add_verdict_error) {
    step_result verdict = make_step("verdict", "verdict", outcome::error, "the drill verified nothing");
    add_case(verdict, "stage");
  }

  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  if (!document.save_file(file.c_str(), "  "))
    throw could_not_verify("cannot write JUnit report " + file.string());
}

constexpr int json_report_version = 1;

namespace detail {

inline nlohmann::json step_json(const step_result& step) {
  nlohmann::json item = {{"name", step.name}, {"kind", step.kind},   {"result", to_string(step.result)},
                         {"message", step.message}, {"seconds", step.seconds}};
  if (!step.expected.empty() || !step.actual.empty()) {
    item["expected"] = step.expected;
    item["actual"] = step.actual;
  }
  if (!step.detail.empty()) item["detail"] = step.detail;
  return item;
}

}  // namespace detail

/// The JSON report: everything the console shows and more, in a versioned shape
/// (`pgdrill_report` is the version; fields are only ever added within a version).
inline nlohmann::json to_json(const drill_result& result) {
  nlohmann::json stages = nlohmann::json::array(), checks = nlohmann::json::array();
  for (const auto& step : result.stages) stages.push_back(detail::step_json(step));
  for (const auto& step : result.checks) checks.push_back(detail::step_json(step));
  exit_code code = result.verdict();
  return {{"pgdrill_report", json_report_version},
          {"scenario", result.scenario},
          {"started_at", result.started_at},
          {"seconds", result.seconds},
          {"verdict", {{"exit_code", static_cast<int>(code)}, {"outcome", describe(code)}}},
          {"properties", properties_of(result)},
          {"restore", {{"tolerated_errors", result.restore.tolerated}, {"adjustments", result.restore.adjustments}}},
          {"stages", stages},
          {"checks", checks}};
}

inline void write_json_report(const drill_result& result, const std::filesystem::path& file) {
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  std::ofstream out(file);
  out << to_json(result).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  if (!out.flush()) throw could_not_verify("cannot write JSON report " + file.string());
}

/// How the runner talks to people and log collectors.
struct console_options {
  bool color = false;     ///< ANSI colours (a terminal, and no NO_COLOR)
  bool progress = false;  ///< restore progress on stderr: a live bar on a terminal, else a line every 30 s
  bool live = false;      ///< stderr is a terminal that understands escape codes (not TERM=dumb)
  bool quiet = false;     ///< only what failed and the verdict
  bool json_logs = false; ///< JSON lines with UTC timestamps instead of text

  /// Colour only on a terminal; never colour or escape codes with NO_COLOR or TERM=dumb.
  static console_options detect(bool quiet, bool json_logs) {
    console_options options;
    const char* term = std::getenv("TERM");
    bool dumb = term && std::string(term) == "dumb";
    bool no_color = std::getenv("NO_COLOR") && *std::getenv("NO_COLOR");
    options.color = !json_logs && !no_color && !dumb && ::isatty(STDOUT_FILENO);
    options.live = !dumb && ::isatty(STDERR_FILENO);
    options.progress = !quiet && !json_logs;
    options.quiet = quiet;
    options.json_logs = json_logs;
    return options;
  }
};

namespace detail {

// "restoring 45.2% 1.2 GB / 2.7 GB at 30.0 MB/s, about 50s left"
inline std::string progress_text(std::uint64_t done, std::uint64_t total, double seconds) {
  double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0;
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  char text[160];
  std::snprintf(text, sizeof text, "%5.1f%% %s / %s at %s/s", fraction * 100, bytes_text(static_cast<double>(done)).c_str(),
                bytes_text(static_cast<double>(total)).c_str(), bytes_text(rate).c_str());
  std::string line = text;
  if (rate > 0 && done > 0 && done < total) line += ", about " + seconds_text(static_cast<double>(total - done) / rate) + " left";
  return line;
}

}  // namespace detail

/// The console reporter: step lines, a progress line while a restore runs, the verdict.
class console_reporter {
 public:
  explicit console_reporter(console_options options, std::ostream& out = std::cout, std::ostream& err = std::cerr)
      : options_(options), out_(out), err_(err) {}

  void log(const std::string& level, const std::string& event, nlohmann::json fields) {
    fields["ts"] = detail::iso8601_utc_millis();
    fields["level"] = level;
    fields["event"] = event;
    out_ << fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  }

  void start(const std::string& scenario, const std::string& file) {
    if (options_.json_logs) return log("info", "drill_started", {{"scenario", scenario}, {"file", file}});
    if (!options_.quiet) out_ << "pgdrill: drill '" << scenario << "' (" << file << ")" << std::endl;
  }

  void step(const step_result& step) {
    clear_progress();
    if (options_.json_logs) {
      auto fields = detail::step_json(step);
      return log(step.result == outcome::error || step.result == outcome::failed ? "error" : "info", "step", fields);
    }
    if (options_.quiet) return;
    std::string line = console_line(step);
    if (options_.color) {
      static const char* colors[] = {"\033[32m", "\033[31m", "\033[35m", "\033[33m"};  // passed failed error skipped
      line.replace(2, 5, std::string(colors[static_cast<int>(step.result)]) + line.substr(2, 5) + "\033[0m");
    }
    out_ << line << std::endl;
  }

  /// Progress of a restore: bytes read of the backup so far. A bar redrawn in place on a
  /// terminal; elsewhere (CI logs) a line every 30 s, so a long restore is never silent.
  void progress(std::uint64_t done, std::uint64_t total, double seconds) {
    double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 0;
    show_progress("restoring", fraction, detail::progress_text(done, total, seconds), seconds);
  }

  /// Progress of the checksums, tables done of those to do, shown like a restore's.
  void checksum_progress(std::size_t done, std::size_t total, double seconds) {
    double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0;
    std::string text = std::to_string(done) + " of " + std::to_string(total) + " tables, " + detail::seconds_text(seconds);
    if (done > 0 && done < total) text += ", about " + detail::seconds_text(seconds / fraction - seconds) + " left";
    show_progress("checksums", fraction, text, seconds);
  }

  void verdict(const drill_result& result, const std::vector<std::string>& reports) {
    clear_progress();
    if (options_.json_logs) {
      exit_code code = result.verdict();
      return log(code == exit_code::passed ? "info" : "error", "drill_finished",
                 {{"scenario", result.scenario}, {"exit_code", static_cast<int>(code)}, {"outcome", describe(code)},
                  {"seconds", result.seconds}, {"reports", reports}});
    }
    print_verdict(out_, result, options_.quiet);
    if (!options_.quiet)
      for (const auto& report : reports) out_ << "report: " << report << "\n";
    out_ << std::flush;
  }

 private:
  // A bar redrawn in place on a terminal; elsewhere a line every 30 s of each phase.
  void show_progress(const std::string& phase, double fraction, const std::string& text, double seconds) {
    if (!options_.progress) return;
    if (!options_.live) {
      if (phase != phase_) next_line_at_ = 30;  // a short phase prints no progress line in a log
      phase_ = phase;
      if (seconds < next_line_at_) return;
      next_line_at_ = seconds + 30;
      err_ << "  " << phase << " " << text << std::endl;
      return;
    }
    int filled = static_cast<int>(fraction * 30);
    err_ << "\r  " << phase << " [" << std::string(filled, '#') << std::string(30 - filled, '.') << "] " << text << " " << std::flush;
    progress_shown_ = true;
  }

  void clear_progress() {
    if (progress_shown_) err_ << "\r\033[K" << std::flush;
    progress_shown_ = false;
  }

  console_options options_;
  std::ostream& out_;
  std::ostream& err_;
  bool progress_shown_ = false;
  double next_line_at_ = 30;  ///< a short phase prints no progress line in a log
  std::string phase_;
};

}  // namespace pgdrill
