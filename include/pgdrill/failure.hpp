// What an exception means for the stage or check it stopped: the one place where an error
// becomes an outcome. By type and SQLSTATE, never by the text of a message.
#pragma once

#include <exception>
#include <string>

#include <pqxx/pqxx>

#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

/// A failure's outcome and the message a report shows for it.
struct judged_failure {
  outcome result = outcome::error;
  std::string message;
};

/// The SQLSTATE an exception carries (libpqxx's or pgdrill's own database_error); "" for others.
/// libpqxx 6 throws the classes it has for some codes without the code itself: their class says it.
inline std::string sqlstate_of(const std::exception& failure) {
  if (const auto* database = dynamic_cast<const database_error*>(&failure)) return database->sqlstate();
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&failure);
  if (!sql) return "";
  if (!sql->sqlstate().empty()) return sql->sqlstate();
  if (dynamic_cast<const pqxx::undefined_table*>(sql)) return sqlstate::undefined_table;
  if (dynamic_cast<const pqxx::undefined_column*>(sql)) return sqlstate::undefined_column;
  if (dynamic_cast<const pqxx::insufficient_privilege*>(sql)) return sqlstate::insufficient_privilege;
  return "";
}

/// Where a failure stopped the drill, which decides what a missing table means.
enum class failure_site {
  check,  ///< a check reading the restored database: a table or column it lacks is the backup's fault
  drill,  ///< the drill's own work (a stage, its catalog queries, a connection): only damaged bytes are
};

/// Judge `failure`: the backup's fault (failed) when its bytes are damaged or, in a check, the
/// restore lacks a table or column the check reads; otherwise the drill could not judge (error), a
/// signal having stopped it included. `doing` names what could not be done for a failure of no
/// such class ("could not run"); empty: the failure's own text alone.
inline judged_failure judge_failure(const std::exception& failure, failure_site where, const std::string& doing = "could not run") {
  const std::string what = failure.what(), state = sqlstate_of(failure);
  if (dynamic_cast<const interrupted*>(&failure)) return {outcome::error, "not run: " + what};
  if (dynamic_cast<const corrupt_backup*>(&failure)) return {outcome::failed, "truncated or corrupt archive: " + what};
  if (where == failure_site::check) {
    if (state == sqlstate::undefined_table) return {outcome::failed, "table missing from the restored database: " + what};
    if (state == sqlstate::undefined_column) return {outcome::failed, "column missing from the restored database: " + what};
    // row_security is off for the checks: rows a policy would hide fail the read instead
    if (state == sqlstate::insufficient_privilege) return {outcome::error, "could not see every row: " + detail::trim(what)};
  }
  std::string cause = state.empty() ? "" : " (SQLSTATE " + state + ")";
  return {outcome::error, doing.empty() ? what : doing + cause + ": " + what};
}

/// Record `failure` on `step` as judge_failure says.
inline void record_failure(step_result& step, const std::exception& failure, failure_site where,
                           const std::string& doing = "could not run") {
  auto judged = judge_failure(failure, where, doing);
  step.result = judged.result;
  step.message = std::move(judged.message);
}

}  // namespace pgdrill
