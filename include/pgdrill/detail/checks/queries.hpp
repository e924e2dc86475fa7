// The checks the scenario writes as queries: sql (a value or no rows) and freshness (the newest row's age).
#pragma once

#include <ctime>
#include <string>

#include <nlohmann/json.hpp>
#include <pgdrill/detail/time.hpp>
#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

// Compares a query's text result with the expected JSON value under an operator.
inline bool compare_sql_value(const pqxx::field& actual, const nlohmann::json& expected, const std::string& op) {
  if (expected.is_null() || actual.is_null()) {
    bool same = expected.is_null() == actual.is_null();
    return op == "=" ? same : op == "!=" ? !same : false;
  }
  int order;
  if (expected.is_number()) {
    long double have = std::stold(actual.c_str()), want = expected.get<long double>();
    order = have < want ? -1 : have > want ? 1 : 0;
  } else if (expected.is_boolean()) {
    bool have = actual.as<bool>();
    order = have == expected.get<bool>() ? 0 : have ? 1 : -1;
  } else {
    int raw = std::string(actual.c_str()).compare(expected.get<std::string>());
    order = raw < 0 ? -1 : raw > 0 ? 1 : 0;
  }
  if (op == "=") return order == 0;
  if (op == "!=") return order != 0;
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  return order >= 0;
}

inline void check_sql(pqxx::connection& connection, const sql_assertion& check, step_result& step) {
  pqxx::read_transaction tx(connection);
  tx.exec("SET LOCAL statement_timeout = " + std::to_string(static_cast<long long>(check.timeout_seconds * 1000)));
  auto rows = tx.exec(check.query);
  if (check.expect_no_rows) {
    step.expected = "no rows";
    step.actual = std::to_string(rows.size()) + " rows";
    std::string first;
    if (!rows.empty())
      for (const auto& field : rows[0]) first += (first.empty() ? "" : ", ") + std::string(field.is_null() ? "NULL" : field.c_str());
    return pass_or_fail(step, rows.empty(), "no rows, as expected",
                        "expected no rows, got " + std::to_string(rows.size()) + " (first: " + first + ")");
  }
  step.expected = check.op + " " + check.expected.dump();
  if (rows.empty() || rows[0].empty()) {
    step.actual = "no rows";
    return pass_or_fail(step, false, "", "expected a value " + step.expected + ", the query returned no rows");
  }
  step.actual = rows[0][0].is_null() ? "NULL" : rows[0][0].c_str();
  pass_or_fail(step, compare_sql_value(rows[0][0], check.expected, check.op), step.actual + " " + step.expected.substr(0, step.expected.find(' ')) + " " + check.expected.dump(),
               "expected " + step.expected + ", got " + step.actual);
}
inline void run_assertion(pqxx::connection& connection, const sql_assertion& check, const check_context&, step_result& step) {
  check_sql(connection, check, step);
}
inline void plan_check(const sql_assertion& check, check_planner& planner) { planner.add(check); }

inline void check_freshness(pqxx::connection& connection, const freshness_assertion& check, const check_context& context,
                            step_result& step) {
  pqxx::nontransaction tx(connection);
  auto newest = tx.exec("SELECT extract(epoch FROM max(" + quote_ident(check.column) + "))::float8 FROM " +
                        quoted_table(check.table))[0][0];
  step.expected = "within " + hours_text(check.max_age_hours) + " of the backup (" + iso8601_utc(context.backup_time) + ")";
  if (newest.is_null()) {
    step.actual = "no rows";
    return pass_or_fail(step, false, "", qualified_table(check.table) + " has no rows: nothing is fresh");
  }
  auto newest_time = static_cast<std::time_t>(newest.as<double>());
  double lag = std::difftime(context.backup_time, newest_time) / 3600.0;
  step.actual = iso8601_utc(newest_time) + " (" + hours_text(lag) + " before the backup)";
  pass_or_fail(step, lag <= check.max_age_hours, "newest " + step.actual,
               qualified_table(check.table) + "." + check.column + ": newest " + step.actual + ", more than " +
                   hours_text(check.max_age_hours) + ": the data is stale");
}
inline void run_assertion(pqxx::connection& connection, const freshness_assertion& check, const check_context& context,
                          step_result& step) {
  check_freshness(connection, check, context, step);
}
inline void plan_check(const freshness_assertion& check, check_planner& planner) { planner.add(check); }

}  // namespace pgdrill::detail
