// Running a scenario's assertions against the restored database; each gives one result.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>

namespace pgdrill {

/// A table name as "schema.table" or "table" (schema public), quoted for SQL.
inline std::string quoted_table(pqxx::connection& connection, const std::string& table) {
  auto dot = table.find('.');
  std::string schema = dot == std::string::npos ? "public" : table.substr(0, dot);
  std::string name = dot == std::string::npos ? table : table.substr(dot + 1);
  return connection.quote_name(schema) + "." + connection.quote_name(name);
}

/// The stable name of an assertion's result: its `name`, else e.g. "row_count public.orders".
inline std::string check_name(const assertion& check) {
  return std::visit(
      [](const row_count_assertion& count) {
        if (!count.name.empty()) return count.name;
        return "row_count " + (count.table.find('.') == std::string::npos ? "public." + count.table : count.table);
      },
      check);
}

/// Result names for all of a scenario's assertions, made unique ("... #2") so that reports and
/// CI trend views can tell them apart.
inline std::vector<std::string> check_names(const std::vector<assertion>& checks) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const auto& check : checks) {
    std::string name = check_name(check);
    int count = ++seen[name];
    names.push_back(count == 1 ? name : name + " #" + std::to_string(count));
  }
  return names;
}

namespace detail {

inline std::string describe_bounds(const row_count_assertion& count) {
  if (count.equals) return "= " + std::to_string(*count.equals);
  if (count.min && count.max) return "between " + std::to_string(*count.min) + " and " + std::to_string(*count.max);
  if (count.min) return ">= " + std::to_string(*count.min);
  return "<= " + std::to_string(*count.max);
}

inline void check_row_count(pqxx::connection& connection, const row_count_assertion& count, step_result& step) {
  step.expected = describe_bounds(count);
  pqxx::nontransaction tx(connection);
  long long rows = tx.exec("SELECT count(*) FROM " + quoted_table(connection, count.table))[0][0].as<long long>();
  step.actual = std::to_string(rows);
  bool within = (!count.equals || rows == *count.equals) && (!count.min || rows >= *count.min) &&
                (!count.max || rows <= *count.max);
  step.result = within ? outcome::passed : outcome::failed;
  step.message = within ? std::to_string(rows) + " rows (expected " + step.expected + ")"
                        : count.table + ": expected " + step.expected + " rows, got " + step.actual;
}

}  // namespace detail

/// Run one assertion. A failed assertion is a result; a missing table is the backup's fault
/// (failed); any other database error means the check could not run (error).
inline step_result run_check(pqxx::connection& connection, const assertion& check, std::string name = {}) {
  step_result step;
  step.name = name.empty() ? check_name(check) : std::move(name);
  step.kind = "row_count";
  auto started = std::chrono::steady_clock::now();
  try {
    std::visit([&](const row_count_assertion& count) { detail::check_row_count(connection, count, step); }, check);
  } catch (const pqxx::undefined_table& missing) {
    step.result = outcome::failed;
    step.message = "table missing from the restored database: " + std::string(missing.what());
  } catch (const pqxx::sql_error& failure) {
    step.result = outcome::error;
    step.message = "could not run (SQLSTATE " + failure.sqlstate() + "): " + failure.what();
  } catch (const std::exception& failure) {
    step.result = outcome::error;
    step.message = std::string("could not run: ") + failure.what();
  }
  step.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (auto newline = step.message.find('\n'); newline != std::string::npos) {
    step.detail = step.message;
    step.message.erase(newline);
  }
  return step;
}

}  // namespace pgdrill
