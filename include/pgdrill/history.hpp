// Drill history (JSON lines), and the gate a pipeline asks before trusting backups.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>  // optional gate limits
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/detail/fd.hpp>
#include <pgdrill/detail/json_reader.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/time.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/schema.hpp>

namespace pgdrill {

constexpr int history_version = 1;

/// A stage or check as a history line keeps it; `message` only when it did not pass.
struct recorded_step {
  std::string name, kind, result, message;
};

/// One drill, as one line of a history file.
struct history_entry {
  std::string at;        ///< when the drill started, ISO 8601 UTC
  std::string scenario;
  int exit_code = 2;
  std::string outcome;   ///< PASSED, FAILED, NOT VERIFIED
  std::string backup;
  std::uintmax_t backup_size = 0;
  std::string backup_taken_at;
  std::optional<double> restore_seconds;  ///< absent when the restore did not complete
  double drill_seconds = 0;
  std::map<std::string, long long> tables;  ///< row counts the drill measured
  std::vector<std::string> schema;          ///< the schema reference, when a drift check read it
  /// Every check, and each stage that did not pass: what the HTML page shows of past drills and
  /// what names the checks of a drill that stops before it can plan them.
  std::vector<recorded_step> steps;

  bool passed() const { return exit_code == 0; }

  nlohmann::json to_json() const {
    nlohmann::json line = {{"pgdrill_history", history_version}, {"at", at}, {"scenario", scenario},
                           {"exit_code", exit_code}, {"outcome", outcome}, {"backup", backup},
                           {"backup_size_bytes", backup_size}, {"backup_taken_at", backup_taken_at},
                           {"drill_seconds", drill_seconds}, {"tables", tables}};
    line["restore_seconds"] = restore_seconds ? nlohmann::json(*restore_seconds) : nlohmann::json();
    if (!schema.empty()) line[schema_reference_key] = schema;
    auto& kept = line["steps"] = nlohmann::json::array();
    for (const auto& step : steps) {
      nlohmann::json item = {{"name", step.name}, {"kind", step.kind}, {"result", step.result}};
      if (!step.message.empty()) item["message"] = step.message;
      kept.push_back(std::move(item));
    }
    return line;
  }
};

/// The history line for a finished drill.
inline history_entry history_entry_from(const drill_result& result) {
  history_entry entry;
  entry.at = result.started_at;
  entry.scenario = result.scenario;
  exit_code code = result.verdict();
  entry.exit_code = static_cast<int>(code);
  entry.outcome = describe(code);
  entry.backup = detail::join(result.backup.files);
  entry.backup_size = result.backup.size_bytes;
  entry.backup_taken_at = result.backup.taken_at;
  entry.restore_seconds = result.restore.seconds;
  entry.drill_seconds = result.seconds;
  entry.tables = result.table_rows;
  entry.schema = result.schema_reference;
  auto keep = [&](const step_result& step) {
    bool passed = step.result == outcome::passed;
    entry.steps.push_back({step.name, step.kind, to_string(step.result), passed ? "" : step.message});
  };
  for (const auto& stage : result.stages)
    if (stage.result == outcome::failed || stage.result == outcome::error) keep(stage);
  for (const auto& check : result.checks) keep(check);
  return entry;
}

/// Append one line, in a single write to a file opened for appending, so concurrent drills of
/// different scenarios never interleave their lines.
inline void append_history(const std::filesystem::path& file, const history_entry& entry) {
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  std::string line = entry.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  detail::unique_fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  bool written = fd && ::write(fd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size());
  if (!written) throw could_not_verify("cannot append to history " + file.string() + ": " + std::strerror(errno));
}

namespace detail {

// A history line's "steps" (empty when absent: lines of older drills).
inline std::vector<recorded_step> recorded_steps(const json_reader& line) {
  std::vector<recorded_step> steps;
  const auto& items = line.raw("steps");
  if (items.is_null()) return steps;
  if (!items.is_array()) line.fail(line.pointer_of("steps"), "expected an array");
  for (std::size_t index = 0; index < items.size(); ++index) {
    json_reader step(items[index], line.pointer_of("steps") + "/" + std::to_string(index), line.source(),
                     {"name", "kind", "result", "message"});
    steps.push_back({step.required<std::string>("name"), step.optional<std::string>("kind").value_or(""),
                     step.required<std::string>("result"), step.optional<std::string>("message").value_or("")});
  }
  return steps;
}

}  // namespace detail

/// Every entry of a history file (of one scenario when `scenario` is given), oldest first.
/// A line that is not a history entry is a usage_error naming its line number.
inline std::vector<history_entry> read_history(const std::filesystem::path& file, const std::string& scenario = "") {
  std::ifstream in(file);
  if (!in) throw could_not_verify("cannot read history " + file.string());
  std::vector<history_entry> entries;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string source = file.string() + ":" + std::to_string(number);
    nlohmann::json document;
    try {
      document = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& failure) {
      throw usage_error(source + ": not valid JSON: " + failure.what());
    }
    detail::json_reader item(document, "", source,
                             {"pgdrill_history", "at", "scenario", "exit_code", "outcome", "backup", "backup_size_bytes",
                              "backup_taken_at", "restore_seconds", "drill_seconds", "tables", "schema", schema_reference_key, "steps"});
    if (item.required<int>("pgdrill_history") != history_version) item.fail("/pgdrill_history", "unsupported version");
    history_entry entry;
    entry.at = item.required<std::string>("at");
    entry.scenario = item.required<std::string>("scenario");
    entry.exit_code = item.required<int>("exit_code");
    entry.outcome = item.optional<std::string>("outcome").value_or("");
    entry.backup = item.optional<std::string>("backup").value_or("");
    entry.backup_size = static_cast<std::uintmax_t>(item.optional<long long>("backup_size_bytes").value_or(0));
    entry.backup_taken_at = item.optional<std::string>("backup_taken_at").value_or("");
    if (!item.raw("restore_seconds").is_null()) entry.restore_seconds = item.required<double>("restore_seconds");
    entry.drill_seconds = item.optional<double>("drill_seconds").value_or(0);
    auto tables = item.object("tables", {});
    for (const auto& table : tables.value().items()) entry.tables[table.key()] = tables.required<long long>(table.key());
    entry.schema = item.strings(schema_reference_key);
    entry.steps = detail::recorded_steps(item);
    if (scenario.empty() || entry.scenario == scenario) entries.push_back(entry);
  }
  return entries;
}

/// What `pgdrill gate` demands of a history.
struct gate_spec {
  double max_age_days = 35;                  ///< the last passing drill is at most this old
  std::optional<double> max_row_drop;        ///< no table lost more than this fraction since the drill before
  std::optional<double> max_restore_seconds; ///< the last restore took at most this long
  std::optional<double> max_restore_growth;  ///< nor this many times the previous restore's time
};

/// The gate's checks, each a result: passed, or failed with the reason.
inline std::vector<step_result> evaluate_gate(const std::vector<history_entry>& entries, const gate_spec& spec,
                                              std::time_t now = std::time(nullptr)) {
  auto step = [](const std::string& name, bool ok, const std::string& message) {
    step_result result;
    result.name = name;
    result.kind = "gate";
    result.result = ok ? outcome::passed : outcome::failed;
    result.message = message;
    return result;
  };
  std::vector<step_result> steps;
  const history_entry* last_pass = nullptr;
  for (const auto& entry : entries)
    if (entry.passed()) last_pass = &entry;
  if (!last_pass) {
    steps.push_back(step("last passing drill", false, "no drill in the history ever passed: the backups are unproven"));
  } else {
    double age_days = std::difftime(now, timestamp_in_name(last_pass->at).value_or(0)) / 86400.0;
    char text[160];
    std::snprintf(text, sizeof text, "the last passing drill (%s) is %.1f days old; limit %.1f", last_pass->at.c_str(),
                  age_days, spec.max_age_days);
    steps.push_back(step("last passing drill", age_days <= spec.max_age_days, text));
  }
  // Trends compare the two newest drills that got as far as measuring.
  std::vector<const history_entry*> measured;
  for (const auto& entry : entries)
    if (entry.restore_seconds) measured.push_back(&entry);
  const history_entry* latest = measured.empty() ? nullptr : measured.back();
  const history_entry* previous = measured.size() < 2 ? nullptr : measured[measured.size() - 2];
  if (spec.max_row_drop) {
    std::string drops;
    if (latest && previous)
      for (const auto& [table, rows] : previous->tables) {
        auto now_rows = latest->tables.find(table);
        if (rows <= 0 || now_rows == latest->tables.end()) continue;
        double drop = 1.0 - static_cast<double>(now_rows->second) / static_cast<double>(rows);
        if (drop > *spec.max_row_drop)
          drops += (drops.empty() ? "" : "; ") + table + " fell from " + std::to_string(rows) + " to " +
                   std::to_string(now_rows->second) + " rows (" + std::to_string(static_cast<int>(std::round(drop * 100))) + "%)";
      }
    steps.push_back(step("row counts", drops.empty(),
                         drops.empty() ? (previous ? "no table lost more than " + std::to_string(static_cast<int>(*spec.max_row_drop * 100)) +
                                                        "% of its rows"
                                                   : "fewer than two measured drills: nothing to compare")
                                       : drops));
  }
  if (spec.max_restore_seconds) {
    bool ok = latest && *latest->restore_seconds <= *spec.max_restore_seconds;
    steps.push_back(step("restore time", ok,
                         latest ? "the last restore took " + detail::seconds_text(*latest->restore_seconds) + "; limit " +
                                      detail::seconds_text(*spec.max_restore_seconds)
                                : "no drill got as far as a restore"));
  }
  if (spec.max_restore_growth) {
    bool ok = !previous || *previous->restore_seconds <= 0 ||
              *latest->restore_seconds <= *previous->restore_seconds * *spec.max_restore_growth;
    char text[160];
    if (previous)
      std::snprintf(text, sizeof text, "restore time went from %.2fs to %.2fs (x%.2f); limit x%.2f", *previous->restore_seconds,
                    *latest->restore_seconds, *latest->restore_seconds / std::max(1e-9, *previous->restore_seconds),
                    *spec.max_restore_growth);
    steps.push_back(step("restore time growth", ok, previous ? text : "fewer than two measured drills: nothing to compare"));
  }
  return steps;
}

}  // namespace pgdrill
