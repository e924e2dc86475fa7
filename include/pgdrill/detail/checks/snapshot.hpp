// The checks of a JSON snapshot's load: each table's rows and columns, and the whole file.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <pgdrill/snapshot.hpp>
#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

// One table of a JSON snapshot: the manifest's count, the file's rows and the restored rows agree,
// and so do the manifest's columns, the keys of the file's rows and the restored table's columns.
inline std::vector<std::string> snapshot_table_findings(pqxx::nontransaction& tx, const snapshot_load& load, const std::string& table,
                                                        long long& restored) {
  const snapshot_table* listed = nullptr;
  for (const auto& entry : load.manifest.tables)
    if (load.manifest.qualified(entry.name) == table) listed = &entry;
  const auto* in_file = load.find(table);
  std::vector<std::string> findings;
  restored = tx.exec("SELECT count(*) FROM " + content_source_of(tx, table))[0][0].as<long long>();
  if (!in_file) findings.push_back("the manifest lists it, but \"data\" holds no rows for it");
  if (in_file && listed && listed->rows && *listed->rows != in_file->rows)
    findings.push_back("the manifest says " + std::to_string(*listed->rows) + " rows, the file holds " + std::to_string(in_file->rows));
  if (in_file && restored != in_file->rows)
    findings.push_back(std::to_string(in_file->rows) + " rows in the file, " + std::to_string(restored) + " restored");
  std::set<std::string> columns;
  for (const auto& row : tx.exec("SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = " + tx.quote(quoted_table(table)) +
                                 "::regclass AND attnum > 0 AND NOT attisdropped"))
    columns.insert(row[0].as<std::string>());
  if (listed && !listed->columns.empty()) {
    std::set<std::string> manifest_columns(listed->columns.begin(), listed->columns.end());
    for (const auto& column : manifest_columns)
      if (!columns.count(column)) findings.push_back("the manifest's column " + column + " is not in the restored table");
    for (const auto& column : columns)
      if (!manifest_columns.count(column)) findings.push_back("the restored table's column " + column + " is not in the manifest");
  }
  if (in_file)
    for (const auto& key : in_file->keys)
      if (!columns.count(key)) findings.push_back("the file's rows carry " + key + ", which the table lacks: those values were not restored");
  return findings;
}

// The whole JSON snapshot: totalRows, the tables of "data" against the manifest's, and the
// tables the scenario says it must hold or leave out.
inline std::vector<std::string> snapshot_findings(const snapshot_load& load, const snapshot_assertion& check) {
  const auto& listed = load.manifest;
  std::vector<std::string> findings;
  long long listed_sum = 0;
  for (const auto& table : listed.tables) listed_sum += table.rows.value_or(0);
  if (listed.total_rows && *listed.total_rows != listed_sum)
    findings.push_back("totalRows says " + std::to_string(*listed.total_rows) + ", the tables' counts add up to " + std::to_string(listed_sum));
  auto listed_table = [&](const std::string& qualified) {
    return std::any_of(listed.tables.begin(), listed.tables.end(), [&](const auto& t) { return listed.qualified(t.name) == qualified; });
  };
  for (const auto& table : load.tables)
    if (!listed_table(table.table)) findings.push_back(table.table + ": the file holds its rows, but the manifest does not list it");
  for (const auto& name : listed.excluded)
    if (load.find(listed.qualified(name))) findings.push_back(listed.qualified(name) + ": the manifest says it is excluded, but the file holds it");
  auto held = [&](const std::string& name) {
    auto qualified = qualified_table(name.find('.') == std::string::npos ? table_name(listed.schema, name) : name);
    return std::make_pair(qualified, listed_table(qualified) || load.find(qualified));
  };
  for (const auto& name : check.include)
    if (auto [qualified, in] = held(name); !in) findings.push_back(qualified + ": must be in the snapshot, and is not");
  for (const auto& name : check.exclude)
    if (auto [qualified, in] = held(name); in) findings.push_back(qualified + ": must be left out of the snapshot, and is in it");
  return findings;
}

inline void run_assertion(pqxx::connection& connection, const snapshot_assertion& check, const check_context& context, step_result& step) {
  if (!context.snapshot) throw could_not_verify("the JSON snapshot was not loaded");
  const auto& load = *context.snapshot;
  std::vector<std::string> findings;
  if (check.table.empty()) {
    findings = snapshot_findings(load, check);
    step.expected = "totalRows, tables and exclusions as the manifest and the scenario say";
  } else {
    pqxx::nontransaction tx(connection);
    long long restored = 0;
    findings = snapshot_table_findings(tx, load, check.table, restored);
    step.table = check.table;
    step.rows = restored;
    step.expected = "rows and columns as in the snapshot's manifest";
    step.actual = std::to_string(restored) + " rows";
  }
  std::string few;
  list_failures(findings, few, step.detail);
  pass_or_fail(step, findings.empty(),
               check.table.empty() ? std::to_string(load.tables.size()) + " tables as the manifest lists them" : step.actual + " and columns as in the manifest",
               few);
}
// One check per table of the manifest, and one for the whole.
inline void plan_check(const snapshot_assertion& check, check_planner& planner) {
  if (!planner.expected() || !planner.expected()->from_snapshot) return planner.add(check, "the backup is no JSON snapshot");
  for (const auto& table : planner.expected()->tables) {
    auto one = check;
    one.table = table.table;
    if (!check.name.empty()) one.name = check.name + " " + table.table;
    planner.add(one);
  }
  planner.add(check);
}

}  // namespace pgdrill::detail
