// Drift against the drills before: this drill's row counts, backup size, restore time and schema
// compared with the last passing drill of the same scenario in its history. A manifest is taken
// in the same snapshot as the dump, so it agrees with a source that lost half its rows; the
// history remembers what the backups held last month.
#pragma once

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>  // a first drill has no baseline
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/assertions.hpp>
#include <pgdrill/checksum.hpp>
#include <pgdrill/history.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/schema.hpp>

namespace pgdrill {

/// What the drift checks compare: the last passing drill and this drill's own measures.
struct drift_measures {
  std::filesystem::path history;           ///< where the baseline was looked for (empty: no history)
  std::optional<history_entry> baseline;   ///< the last passing drill of the scenario, if any
  std::string problem;                     ///< why the history or this drill's measures could not be read
  std::map<std::string, long long> rows;   ///< this drill's row count of every user table
  std::vector<std::string> schema;         ///< this drill's schema reference
  std::uintmax_t backup_size = 0;
  std::optional<double> restore_seconds;
};

/// The last passing drill of `scenario` in the history `file`; none while the file does not exist.
inline std::optional<history_entry> last_passing_drill(const std::filesystem::path& file, const std::string& scenario) {
  if (!std::filesystem::exists(file)) return std::nullopt;
  auto entries = read_history(file, scenario);
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry)
    if (entry->passed()) return *entry;
  return std::nullopt;
}

/// The row count of every user table (as a manifest lists them), and of each of `also` that
/// exists (a partitioned parent a check counted before, say), each counted as every check counts.
inline std::map<std::string, long long> count_rows_of_user_tables(const endpoint& target, const std::vector<std::string>& also = {}) {
  checksum_connection connection(target);
  std::map<std::string, long long> rows;
  auto count = [&](const std::string& table, char relkind) {
    auto result = connection.execute("SELECT count(*) FROM " + detail::content_source(table, relkind));
    rows[table] = std::stoll(PQgetvalue(result.get(), 0, 0));
  };
  for (const auto& table : detail::user_tables(connection)) count(table, 'r');
  for (const auto& table : also) {
    if (rows.count(table)) continue;
    auto kind = connection.execute(detail::relkind_query(table));
    if (PQntuples(kind.get()) > 0) count(table, PQgetvalue(kind.get(), 0, 0)[0]);
  }
  return rows;
}

namespace detail {

inline std::string percent_text(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f%%", fraction * 100);
  return text;
}

// How much smaller `now` is than `before`, as a fraction (negative: it grew).
inline double drop_of(double before, double now) { return before > 0 ? 1.0 - now / before : 0.0; }

inline void judge_row_drift(double limit, const drift_measures& now, step_result& step) {
  step.expected = "no table loses more than " + percent_text(limit) + " of its rows";
  std::vector<std::string> drops;
  for (const auto& [table, before] : now.baseline->tables) {
    auto counted = now.rows.find(table);
    if (counted == now.rows.end()) {
      drops.push_back(table + ": gone (had " + std::to_string(before) + " rows)");
    } else if (double drop = drop_of(static_cast<double>(before), static_cast<double>(counted->second)); drop > limit) {
      drops.push_back(table + ": " + std::to_string(before) + " -> " + std::to_string(counted->second) + " rows (-" +
                      percent_text(drop) + ")");
    }
  }
  step.actual = std::to_string(drops.size()) + " of " + std::to_string(now.baseline->tables.size()) + " tables beyond the limit";
  std::string few;
  list_failures(drops, few, step.detail);
  pass_or_fail(step, drops.empty(), std::to_string(now.baseline->tables.size()) + " tables within " + percent_text(limit) +
                                        " of the drill of " + now.baseline->at,
               "rows dropped since the drill of " + now.baseline->at + " (limit " + percent_text(limit) + "): " + few);
}

inline void judge_size_drift(double limit, const drift_measures& now, step_result& step) {
  double before = static_cast<double>(now.baseline->backup_size), size = static_cast<double>(now.backup_size);
  double drop = drop_of(before, size);
  step.expected = "at most " + percent_text(limit) + " smaller than " + bytes_text(before);
  step.actual = bytes_text(size);
  std::string change = bytes_text(before) + " -> " + bytes_text(size) + " since the drill of " + now.baseline->at;
  pass_or_fail(step, drop <= limit, change, "the backup shrank by " + percent_text(drop) + ": " + change + " (limit " + percent_text(limit) + ")");
}

inline void judge_restore_growth(double limit, const drift_measures& now, step_result& step) {
  double before = now.baseline->restore_seconds.value_or(0), took = now.restore_seconds.value_or(0);
  char factor[64], limit_text[32];
  std::snprintf(factor, sizeof factor, "x%.2f (limit x%.2f)", before > 0 ? took / before : 1.0, limit);
  std::snprintf(limit_text, sizeof limit_text, "x%.2f", limit);
  step.expected = std::string("at most ") + limit_text + " the restore time of the drill of " + now.baseline->at;
  step.actual = seconds_text(took);
  std::string change = seconds_text(before) + " -> " + seconds_text(took) + " " + factor;
  pass_or_fail(step, before <= 0 || took <= before * limit, "restore time " + change + " since the drill of " + now.baseline->at,
               "the restore is slower than in the drill of " + now.baseline->at + ": " + change);
}

inline void judge_schema_drift(bool warn_only, const drift_measures& now, step_result& step) {
  step.expected = "the schema of the drill of " + now.baseline->at;
  if (now.baseline->schema.empty()) {
    step.result = outcome::passed;
    step.message = "the drill of " + now.baseline->at + " recorded no schema: this drill's is the baseline";
    return;
  }
  auto difference = diff_schema(now.baseline->schema, now.schema);
  judge_schema_difference(difference, "the drill of " + now.baseline->at, step);
  if (warn_only && step.result == outcome::failed) {
    step.result = outcome::passed;
    step.message = "warning: " + step.message;
  }
}

}  // namespace detail

/// One drift check against the last passing drill: passed while there is none yet (this drill is
/// the baseline), an error when the history or this drill's measures could not be read.
inline void judge_drift(const drift_assertion& check, const drift_measures& now, step_result& step) {
  if (now.history.empty()) {
    step.result = outcome::error;
    step.message = "a drift check needs a history: set \"reports\": {\"history\": FILE} in the scenario or pass --history";
    return;
  }
  if (!now.problem.empty()) {
    step.result = outcome::error;
    step.message = "could not measure for the drift checks: " + now.problem;
    return;
  }
  if (!now.baseline) {
    step.result = outcome::passed;
    step.message = "no passing drill of this scenario in " + now.history.filename().string() + " yet: this drill is the baseline";
    return;
  }
  if (check.aspect == drift_aspect::rows) detail::judge_row_drift(check.limit, now, step);
  if (check.aspect == drift_aspect::backup_size) detail::judge_size_drift(check.limit, now, step);
  if (check.aspect == drift_aspect::restore_time) detail::judge_restore_growth(check.limit, now, step);
  if (check.aspect == drift_aspect::schema) detail::judge_schema_drift(check.warn_only, now, step);
}

}  // namespace pgdrill
