// The checks of rows: row counts, checksums, tables present, not empty; and the partitions whose
// rows a restore moves among their siblings, which these judge with their table as a whole.
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/integrity.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

inline std::string describe_bounds(const row_count_assertion& count) {
  if (count.equals) return "= " + std::to_string(*count.equals);
  if (count.min && count.max) return "between " + std::to_string(*count.min) + " and " + std::to_string(*count.max);
  if (count.min) return ">= " + std::to_string(*count.min);
  return "<= " + std::to_string(*count.max);
}

// The restored database's moving partitions (see moving_partitions): leaves under a table
// hash-partitioned on a column of an enum type, named as manifests name tables.
inline moving_partitions read_moving_partitions(pqxx::connection& connection) {
  moving_partitions moving;
  pqxx::nontransaction tx(connection);
  auto rows = tx.exec(R"(WITH RECURSIVE roots AS (
      SELECT p.partrelid AS root FROM pg_catalog.pg_partitioned_table p WHERE p.partstrat = 'h' AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = p.partrelid AND a.attnum = ANY (p.partattrs::int2[]) AND t.typtype = 'e')),
    tree AS (SELECT root, root AS rel FROM roots
             UNION ALL SELECT tree.root, i.inhrelid FROM tree JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.rel)
    SELECT ln.nspname, l.relname, rn.nspname, r.relname FROM tree
      JOIN pg_catalog.pg_class l ON l.oid = tree.rel JOIN pg_catalog.pg_namespace ln ON ln.oid = l.relnamespace
      JOIN pg_catalog.pg_class r ON r.oid = tree.root JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
    WHERE l.relkind = 'r' ORDER BY 3, 4, 1, 2)");
  for (const auto& row : rows) {
    auto leaf = table_name(row[0].c_str(), row[1].c_str()), root = table_name(row[2].c_str(), row[3].c_str());
    if (moving.root_of.emplace(leaf, root).second) moving.leaves_of[root].push_back(leaf);
  }
  return moving;
}

// The table hash-partitioned on an enum that `table` is a leaf of (moving_partitions); null when none.
inline const std::string* moving_root(const check_context& context, const std::string& table) {
  if (!context.moving) return nullptr;
  auto found = context.moving->root_of.find(table);
  return found == context.moving->root_of.end() ? nullptr : &found->second;
}

// Why a leaf of a table whose rows move on a restore is judged with that table as a whole.
inline std::string moving_rows_reason(const std::string& root) {
  return "judged with " + qualified_table(root) + " as a whole: it is hash-partitioned on an enum, whose new OIDs in a "
         "restore hash rows to other partitions";
}

// The rows the manifest recorded for every leaf of `root`; nothing when it lacks one of them.
inline std::optional<long long> manifest_rows_of_leaves(const check_context& context, const std::string& root) {
  if (!context.expected) return std::nullopt;
  long long total = 0;
  for (const auto& leaf : context.moving->leaves_of.at(root)) {
    auto found = std::find_if(context.expected->tables.begin(), context.expected->tables.end(),
                              [&](const table_checksum& table) { return table.table == leaf; });
    if (found == context.expected->tables.end()) return std::nullopt;
    total += found->rows;
  }
  return total;
}

// A leaf's exact count that differs, judged as its moving table's: the rows of every leaf together
// against the manifest's. False when it cannot be judged so (no such table, a leaf not recorded).
inline bool judged_with_moving_table(pqxx::nontransaction& tx, const row_count_assertion& count, const check_context& context,
                                     step_result& step) {
  const std::string* root = moving_root(context, count.table);
  auto expected = root ? manifest_rows_of_leaves(context, *root) : std::nullopt;
  if (!count.equals || !expected) return false;
  long long together = tx.exec("SELECT count(*) FROM " + content_source_of(tx, *root))[0][0].as<long long>();
  step.detail = moving_rows_reason(*root);
  pass_or_fail(step, together == *expected,
               std::to_string(together) + " rows in " + qualified_table(*root) + " as a whole, as in the source (" + step.actual +
                   " in this partition, " + std::to_string(*count.equals) + " at the source)",
               qualified_table(*root) + ": expected " + std::to_string(*expected) + " rows in its partitions, got " +
                   std::to_string(together));
  return true;
}

inline void check_row_count(pqxx::connection& connection, const row_count_assertion& count, const check_context& context,
                            step_result& step) {
  step.expected = describe_bounds(count);
  pqxx::nontransaction tx(connection);
  long long rows = tx.exec("SELECT count(*) FROM " + content_source_of(tx, count.table))[0][0].as<long long>();
  step.table = qualified_table(count.table);
  step.rows = rows;
  step.actual = std::to_string(rows);
  bool within = (!count.equals || rows == *count.equals) && (!count.min || rows >= *count.min) &&
                (!count.max || rows <= *count.max);
  if (!within && judged_with_moving_table(tx, count, context, step)) return;
  pass_or_fail(step, within, std::to_string(rows) + " rows (expected " + step.expected + ")",
               qualified_table(count.table) + ": expected " + step.expected + " rows, got " + step.actual);
}

inline void check_tables_present(pqxx::connection& connection, const tables_present_assertion& check, step_result& step) {
  pqxx::nontransaction tx(connection);
  std::string missing, empty;
  for (const auto& table : check.tables) {
    bool exists = !tx.exec("SELECT to_regclass(" + tx.quote(quoted_table(table)) + ")")[0][0].is_null();
    if (!exists) {
      missing += (missing.empty() ? "" : ", ") + qualified_table(table);
    } else if (check.non_empty &&
               !tx.exec("SELECT EXISTS (SELECT 1 FROM " + content_source_of(tx, table) + ")")[0][0].as<bool>()) {
      empty += (empty.empty() ? "" : ", ") + qualified_table(table);
    }
  }
  if (check.tables.empty()) {
    step.expected = check.allow_empty ? "no tables (allowed)" : "at least one table";
    step.actual = "no tables";
    return pass_or_fail(step, check.allow_empty, "no tables, as the scenario allows",
                        "no tables to check: the manifest lists none (a dump of an empty or wrong database?); "
                        "set \"allow_empty\": true if that is expected");
  }
  std::string problems = (missing.empty() ? "" : "missing from the restore: " + missing) +
                         (!missing.empty() && !empty.empty() ? "; " : "") + (empty.empty() ? "" : "restored empty: " + empty);
  step.expected = std::to_string(check.tables.size()) + " tables" + (check.non_empty ? ", none empty" : "");
  step.actual = problems.empty() ? step.expected : problems;
  pass_or_fail(step, problems.empty(), "all " + std::to_string(check.tables.size()) + " tables present" +
                                           (check.non_empty ? " and non-empty" : ""),
               problems);
}

inline void run_assertion(pqxx::connection& connection, const row_count_assertion& check, const check_context& context,
                          step_result& step) {
  check_row_count(connection, check, context, step);
}
inline void plan_check(const row_count_assertion& check, check_planner& planner) {
  planner.add_per_manifest_table(check, [](row_count_assertion& one, const table_checksum& table) { one.equals = table.rows; });
}

inline void run_assertion(pqxx::connection& connection, const tables_present_assertion& check, const check_context&,
                          step_result& step) {
  check_tables_present(connection, check, step);
}
inline void plan_check(const tables_present_assertion& check, check_planner& planner) {
  const manifest* expected = planner.expected();
  if (!check.from_manifest) return planner.add(check);
  if (!expected) return planner.add_without_manifest(check);
  if (expected->tables.empty()) return planner.add_for_no_tables(check);
  tables_present_assertion all = check;
  for (const auto& table : expected->tables)
    if (!check_planner::excluded(check.except, table.table)) all.tables.push_back(table.table);
  planner.add(all);
}

inline void run_assertion(pqxx::connection& connection, const not_empty_assertion& check, const check_context&, step_result& step) {
  long long tables = count_user_tables(connection);
  step.expected = check.allow_empty ? "any number of tables" : "at least one table";
  step.actual = std::to_string(tables) + " tables";
  pass_or_fail(step, tables > 0 || check.allow_empty,
               tables > 0 ? "the restore holds " + step.actual : "empty, accepted by \"allow_empty\"",
               "the restored database holds no table: a restore of nothing proves nothing (if an empty backup is expected, "
               "add {\"type\": \"not_empty\", \"allow_empty\": true} to the assertions)");
}
inline void plan_check(const not_empty_assertion& check, check_planner& planner) { planner.add(check); }

// Checksums: taken together over parallel connections (checks.hpp's run_checksums), judged here.
template <>
constexpr bool runs_alone<checksum_assertion> = false;

inline void plan_check(const checksum_assertion& check, check_planner& planner) {
  if (check.from_manifest && planner.expected() && planner.expected()->from_snapshot)
    return planner.add(check, "a JSON snapshot's manifest records no checksums: give them by literal (\"equals\")");
  planner.add_per_manifest_table(check, [](checksum_assertion& one, const table_checksum& table) {
    one.equals = table.digest;
    one.columns = table.columns;
  });
}

// A checksum check's result from the checksum taken for it.
inline step_result checksum_step(const planned_check& planned_one, const checksum_outcome& taken) {
  const auto& check = std::get<checksum_assertion>(planned_one.check);
  step_result step;
  step.name = planned_one.name;
  step.kind = "checksum";
  step.seconds = taken.seconds;
  step.expected = check.equals;
  if (taken.failure) {
    try {
      std::rethrow_exception(taken.failure);
    } catch (const std::exception& failure) {
      record_failure(step, failure, failure_site::check);
    }
  } else {
    const auto& sum = taken.sum;
    step.table = sum.table;
    step.rows = sum.rows;
    step.actual = sum.digest;
    pass_or_fail(step, sum.digest == check.equals, sum.digest + " over " + std::to_string(sum.rows) + " rows",
                 sum.table + ": content differs from the expected checksum (" + std::to_string(sum.rows) + " rows, checksum " +
                     sum.digest + ", expected " + check.equals + ")");
  }
  keep_first_line(step);
  return step;
}

// The sum of checksum digests modulo 2^128 (32 hex digits each, high half first): the digest of
// their rows together, as the checksum's definition adds rows.
inline std::string digest_sum(const std::vector<std::string>& digests) {
  std::uint64_t high = 0, low = 0;
  for (const auto& digest : digests) {
    std::uint64_t add_high = std::stoull(digest.substr(0, 16), nullptr, 16), add_low = std::stoull(digest.substr(16, 16), nullptr, 16);
    low += add_low;
    high += add_high + (low < add_low ? 1 : 0);
  }
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(high), static_cast<unsigned long long>(low));
  return text;
}

// Checksums of leaves whose rows a restore moves among their siblings: where one differs and every
// leaf of its table was checksummed, the leaves are judged together, their digests' sum against
// the source's.
inline void judge_moving_checksums(const check_plan& plan, const moving_partitions& moving, std::map<check_id, step_result>& results) {
  auto checksum_of = [&](const check_id& id) -> const checksum_assertion& { return std::get<checksum_assertion>(plan.find(id)->check); };
  std::map<std::string, std::vector<check_id>> by_root;  // the moving table -> its leaves' checks
  for (const auto& [id, step] : results)
    if (auto root = moving.root_of.find(checksum_of(id).table); root != moving.root_of.end()) by_root[root->second].push_back(id);
  for (const auto& [root, ids] : by_root) {
    std::vector<std::string> expected, actual;
    bool any_failed = false, all_read = ids.size() == moving.leaves_of.at(root).size();
    for (const auto& id : ids) {
      const auto& step = results.at(id);
      all_read = all_read && step.result != outcome::error && step.actual.size() == 32;
      any_failed = any_failed || step.result == outcome::failed;
      expected.push_back(checksum_of(id).equals);
      actual.push_back(step.actual);
    }
    if (!any_failed || !all_read) continue;
    const std::string source = digest_sum(expected), restored = digest_sum(actual);
    for (const auto& id : ids) {
      auto& step = results.at(id);
      step.detail = moving_rows_reason(root) + (step.detail.empty() ? "" : "\n" + step.detail);
      pass_or_fail(step, source == restored, "content of " + qualified_table(root) + " as a whole as in the source (" + restored + ")",
                   qualified_table(root) + ": the content of its partitions differs from the source's (checksum " + restored +
                       ", expected " + source + ")");
    }
  }
}

}  // namespace pgdrill::detail
