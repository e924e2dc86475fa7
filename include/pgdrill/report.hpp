// Reports of a drill: a readable console summary and JUnit XML for CI.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>

#include <pugixml.hpp>

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

/// The closing lines: counts, verdict and exit code.
inline void print_verdict(std::ostream& out, const drill_result& result) {
  int passed = 0, failed = 0, errors = 0, skipped = 0;
  for (const auto& check : result.checks) {
    passed += check.result == outcome::passed;
    failed += check.result == outcome::failed;
    errors += check.result == outcome::error;
    skipped += check.result == outcome::skipped;
  }
  for (const auto& stage : result.stages)
    if (stage.result == outcome::failed || stage.result == outcome::error) {
      out << "\n" << stage.name << ": " << stage.message << "\n";
      if (!stage.detail.empty()) out << stage.detail << (stage.detail.back() == '\n' ? "" : "\n");
    }
  exit_code code = result.verdict();
  out << "verdict: " << describe(code) << " (exit " << static_cast<int>(code) << ") - checks: " << passed
      << " passed, " << failed << " failed, " << errors << " errors, " << skipped << " skipped; "
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
  for (const auto& [name, value] : result.properties) {
    auto property = properties.append_child("property");
    property.append_attribute("name") = name.c_str();
    property.append_attribute("value") = value.c_str();
  }
  const std::string classname = "pgdrill." + result.scenario;
  auto add_case = [&](const step_result& step, const std::string& group) {
    auto testcase = suite.append_child("testcase");
    testcase.append_attribute("classname") = (classname + "." + group).c_str();
    testcase.append_attribute("name") = step.name.c_str();
    testcase.append_attribute("time") = detail::junit_seconds(step.seconds).c_str();
    const char* element = step.result == outcome::failed ? "failure"
                          : step.result == outcome::error ? "error"
                          : step.result == outcome::skipped ? "skipped"
                                                             : nullptr;
    if (element) {
      auto node = testcase.append_child(element);
      node.append_attribute("message") = step.message.c_str();
      if (step.result != outcome::skipped) node.append_attribute("type") = step.kind.c_str();
      std::string body = step.detail;
      if (!step.expected.empty()) body = "expected: " + step.expected + "\nactual: " + step.actual + "\n" + body;
      if (!body.empty()) node.text() = body.c_str();
    } else if (!step.message.empty()) {
      testcase.append_child("system-out").text() = step.message.c_str();
    }
  };
  for (const auto& stage : result.stages) add_case(stage, "stage");
  for (const auto& check : result.checks) add_case(check, "check");
  if (add_verdict_error) {
    step_result verdict{"verdict", "verdict", outcome::error, "the drill verified nothing", "", "", "", 0};
    add_case(verdict, "stage");
  }

  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  if (!document.save_file(file.c_str(), "  "))
    throw could_not_verify("cannot write JUnit report " + file.string());
}

}  // namespace pgdrill
