// What a drill found: outcomes of stages and checks, as plain data for the reporters.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <pgdrill/error.hpp>

namespace pgdrill {

namespace detail {

/// "1.23s", for people.
inline std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2fs", seconds);
  return text;
}

/// "48.6 KiB", for people.
inline std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

/// "3d 4h", "5h 12m", "42s": an age, for people.
inline std::string age_text(double seconds) {
  long long total = static_cast<long long>(seconds < 0 ? 0 : seconds);
  char text[32];
  if (total >= 86400) std::snprintf(text, sizeof text, "%lldd %lldh", total / 86400, total % 86400 / 3600);
  else if (total >= 3600) std::snprintf(text, sizeof text, "%lldh %lldm", total / 3600, total % 3600 / 60);
  else if (total >= 60) std::snprintf(text, sizeof text, "%lldm %llds", total / 60, total % 60);
  else std::snprintf(text, sizeof text, "%llds", total);
  return text;
}

}  // namespace detail

/// passed; failed (the backup is at fault); error (could not run); skipped (not reached).
enum class outcome { passed, failed, error, skipped };

inline const char* to_string(outcome value) {
  switch (value) {
    case outcome::passed: return "passed";
    case outcome::failed: return "failed";
    case outcome::error: return "error";
    case outcome::skipped: return "skipped";
  }
  return "error";
}

/// One stage ("locate backup", "restore", ...) or one assertion ("row_count public.orders").
struct step_result {
  std::string name;        ///< stable across runs: CI trend views key on it
  std::string kind;        ///< "stage", or the assertion type
  outcome result = outcome::skipped;
  std::string message;     ///< one line: why it failed / what it did
  std::string detail;      ///< longer text (stderr tail, server log)
  std::string expected, actual;
  double seconds = 0;
};

/// The whole drill.
struct drill_result {
  std::string scenario;
  std::string started_at;                        ///< ISO 8601 UTC
  double seconds = 0;
  std::vector<step_result> stages;               ///< in order
  std::vector<step_result> checks;               ///< one per assertion, in scenario order
  std::map<std::string, std::string> properties; ///< backup file, size, versions, provider, ...

  /// Exit code: a failure anywhere means the backup failed the drill; otherwise any error (or
  /// nothing that passed) means it could not be verified. Never green without a passing check.
  exit_code verdict() const {
    bool any_error = false, any_failed = false, any_check_passed = false;
    for (const auto* list : {&stages, &checks})
      for (const auto& step : *list) {
        any_failed |= step.result == outcome::failed;
        any_error |= step.result == outcome::error || (list == &checks && step.result == outcome::skipped);
      }
    for (const auto& check : checks) any_check_passed |= check.result == outcome::passed;
    if (any_failed) return exit_code::failed;
    if (any_error || !any_check_passed) return exit_code::not_verified;
    return exit_code::passed;
  }
};

inline const char* describe(exit_code code) {
  switch (code) {
    case exit_code::passed: return "PASSED";
    case exit_code::failed: return "FAILED";
    case exit_code::not_verified: return "NOT VERIFIED";
    case exit_code::usage: return "USAGE ERROR";
    case exit_code::locked: return "LOCKED";
  }
  return "NOT VERIFIED";
}

}  // namespace pgdrill
