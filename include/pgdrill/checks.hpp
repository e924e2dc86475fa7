// Running a scenario's assertions against the restored database; each gives one result.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/checksum.hpp>
#include <pgdrill/checksums_during_restore.hpp>
#include <pgdrill/assertions.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/ticker.hpp>
#include <pgdrill/drift.hpp>
#include <pgdrill/integrity.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/objects.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/roles.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/schema.hpp>
#include <pgdrill/snapshot.hpp>

namespace pgdrill {

/// One assertion ready to run: manifest-wide assertions are expanded into one per table, and
/// every name is unique. A non-empty `problem` means it cannot run (reported as an error).
struct planned_check {
  std::string name;
  std::string kind;
  assertion check;
  std::string problem;
  bool per_manifest_table = false;  ///< stands for one check per manifest table, unexpanded: no manifest was found
};

/// The leaves of tables hash-partitioned on an enum column, as "schema.table": a restore gives the
/// enum's labels new OIDs, which hash the rows to other leaves (pg_dump loads such tables through
/// their root), so only the partitioned table as a whole keeps the source's rows.
struct moving_partitions {
  std::map<std::string, std::string> root_of;                 ///< leaf -> the hash-partitioned table
  std::map<std::string, std::vector<std::string>> leaves_of;  ///< that table -> its leaves
};

/// What checks need besides the database: the backup's own time and its manifest, if any.
struct check_context {
  std::time_t backup_time = 0;
  const manifest* expected = nullptr;
  const endpoint* target = nullptr;  ///< the restored database, for checks that read it with their own connection
  /// The roles the restored backups' SQL refers to; null when the restore did not read them.
  const std::set<std::string>* referenced_roles = nullptr;
  /// The last passing drill and this one's measures, for drift checks; null when not taken.
  const drift_measures* drift = nullptr;
  /// What loading a JSON snapshot found (its manifest and each table's rows in the file); null
  /// for other backups.
  const snapshot_load* snapshot = nullptr;
  /// Checksums taken while the restore went on, by index into the planned checks; null when none.
  const std::map<std::size_t, checksum_outcome>* checksummed_during_restore = nullptr;
  /// Why the restore database has the server's default locale, not the source's; null or empty when it has the source's.
  const std::string* locale_unavailable = nullptr;
  /// Partitions whose rows a restore moves among their siblings (detail::read_moving_partitions); null when not read.
  const moving_partitions* moving = nullptr;
};

namespace detail {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

inline bool excluded(const std::vector<std::string>& except, const std::string& table) {
  for (const auto& name : except)
    if (qualified_table(name) == table) return true;
  return false;
}

}  // namespace detail

/// Expand and name a scenario's assertions. `expected` is the backup's manifest (may be null:
/// assertions that need it are planned with a problem).
inline std::vector<planned_check> plan_checks(const std::vector<assertion>& assertions, const manifest* expected) {
  std::vector<planned_check> planned;
  auto add = [&](assertion check, std::string problem = {}) {
    planned.push_back({name_of(check), kind_of(check), std::move(check), std::move(problem), false});
  };
  const std::string no_manifest = "\"expect\": \"manifest\" but no manifest was found beside the backup";
  // One assertion per manifest table (or for the one table named), its expectation filled in by
  // `fill`; an explicit name is kept only when a single table is named.
  // A manifest without tables proves nothing: one check says so, failing unless allowed.
  auto no_tables = [&](const auto& c) {
    tables_present_assertion none;
    none.name = c.name.empty() ? detail::per_table_name(c.kind, "") : c.name;
    none.allow_empty = c.allow_empty;
    add(none);
  };
  // Large objects, sequence values, materialized views: recorded only by format 2 manifests.
  auto needs_objects = [&](const auto& c) {
    if (!expected) return add(c, no_manifest);
    if (expected->from_snapshot) return add(c, "a JSON snapshot's manifest records no large objects, sequences or materialized views");
    if (!expected->objects_recorded)
      return add(c, "this manifest records no large objects, sequences or materialized views (an older pgdrill wrote "
                    "it): take a new one with pgdrill dump or pgdrill manifest");
    if (auto unread = expected->unreadable_of(kind_of(c)); !unread.empty())
      return add(c, "the manifest could not read these at backup time: " + unread);
    add(c);
  };
  // Collations and the schema reference: recorded by manifests of this pgdrill only.
  auto needs_recorded = [&](const auto& c, bool recorded, const std::string& what) {
    if (!expected) return add(c, no_manifest);
    if (!recorded)
      return add(c, "this manifest records no " + what + " (an older pgdrill wrote it): take a new one with pgdrill dump or "
                    "pgdrill manifest");
    add(c);
  };
  auto per_manifest_table = [&](const auto& c, auto fill) {
    if (!c.from_manifest) return add(c);
    if (!expected) {
      add(c, no_manifest);
      planned.back().per_manifest_table = c.table.empty();
      return;
    }
    if (expected->tables.empty() && c.table.empty()) return no_tables(c);
    for (const auto& table : expected->tables) {
      if ((!c.table.empty() && detail::qualified_table(c.table) != table.table) || detail::excluded(c.except, table.table))
        continue;
      auto one = c;
      one.table = table.table;
      if (c.table.empty()) one.name.clear();
      if (!table.error.empty()) {  // unreadable when the manifest was taken: nothing to compare with
        add(one, "the manifest could not read " + table.table + " at backup time: " + table.error);
        continue;
      }
      fill(one, table);
      add(one);
    }
    if (!c.table.empty() && !expected->find(c.table)) add(c, "table " + c.table + " is not in the manifest");
  };
  for (const auto& original : assertions) {
    std::visit(detail::overloaded{
                   [&](const row_count_assertion& c) {
                     per_manifest_table(c, [](row_count_assertion& one, const table_checksum& table) { one.equals = table.rows; });
                   },
                   [&](const checksum_assertion& c) {
                     if (c.from_manifest && expected && expected->from_snapshot)
                       return add(c, "a JSON snapshot's manifest records no checksums: give them by literal (\"equals\")");
                     per_manifest_table(c, [](checksum_assertion& one, const table_checksum& table) {
                       one.equals = table.digest;
                       one.columns = table.columns;
                     });
                   },
                   [&](const tables_present_assertion& c) {
                     if (!c.from_manifest) return add(c);
                     if (!expected) return add(c, no_manifest);
                     if (expected->tables.empty()) return no_tables(c);
                     tables_present_assertion all = c;
                     for (const auto& table : expected->tables)
                       if (!detail::excluded(c.except, table.table)) all.tables.push_back(table.table);
                     add(all);
                   },
                   [&](const sequences_assertion& c) { c.from_manifest ? needs_objects(c) : add(c); },
                   [&](const large_objects_assertion& c) { needs_objects(c); },
                   [&](const materialized_views_assertion& c) { needs_objects(c); },
                   [&](const collations_assertion& c) { needs_recorded(c, expected && expected->collations, "collations"); },
                   [&](const schema_assertion& c) {
                     c.from_manifest ? needs_recorded(c, expected && expected->schema, "schema reference") : add(c);
                   },
                   [&](const schema_objects_assertion& c) {
                     expected && expected->schema_objects.empty() ? add(c, "this manifest records no schema object counts")
                                                                  : needs_objects(c);
                   },
                   [&](const thorough_assertion&) {  // collations too where a manifest recorded them
                     add(amcheck_assertion{});
                     add(constraints_valid_assertion{});
                     add(read_all_assertion{});
                     if (expected && expected->collations) add(collations_assertion{});
                   },
                   [&](const drift_assertion& c) {  // one check per aspect asked for
                     auto aspect = [&](drift_aspect which, double limit, bool warn_only) {
                       auto one = c;
                       one.aspect = which;
                       one.limit = limit;
                       one.warn_only = warn_only;
                       if (!c.name.empty()) one.name = c.name + one.default_name().substr(std::string(c.kind).size());
                       add(one);
                     };
                     if (c.max_row_drop) aspect(drift_aspect::rows, *c.max_row_drop, false);
                     if (c.max_size_drop) aspect(drift_aspect::backup_size, *c.max_size_drop, false);
                     if (c.max_restore_growth) aspect(drift_aspect::restore_time, *c.max_restore_growth, false);
                     if (!c.schema.empty()) aspect(drift_aspect::schema, 0, c.schema == "warn");
                   },
                   [&](const snapshot_assertion& c) {  // one check per table of the manifest, and one for the whole
                     if (!expected || !expected->from_snapshot) return add(c, "the backup is no JSON snapshot");
                     for (const auto& table : expected->tables) {
                       auto one = c;
                       one.table = table.table;
                       if (!c.name.empty()) one.name = c.name + " " + table.table;
                       add(one);
                     }
                     add(c);
                   },
                   [&](const auto& c) { add(c); }},
               original);
  }
  std::map<std::string, int> seen;
  for (auto& check : planned)
    if (int count = ++seen[check.name]; count > 1) check.name += " #" + std::to_string(count);
  return planned;
}

/// A scenario's checks as every drill runs them (`pgdrill run`, `verify`, the GoogleTest
/// harness): its assertions, plus the standing checks every drill has unless the scenario
/// states its own: an empty restore never passes (not_empty), and the roles the restore lacked
/// are shown (roles).
inline std::vector<planned_check> plan_scenario_checks(const scenario& plan, const manifest* expected) {
  auto all = plan.assertions;
  auto lacks = [&](auto kind_tag) {
    using kind = typename decltype(kind_tag)::type;
    return std::none_of(all.begin(), all.end(), [](const assertion& check) { return std::holds_alternative<kind>(check); });
  };
  if (lacks(std::common_type<not_empty_assertion>{})) all.emplace_back(not_empty_assertion{});
  if (lacks(std::common_type<roles_assertion>{})) all.emplace_back(roles_assertion{});
  if (expected && expected->from_snapshot && lacks(std::common_type<snapshot_assertion>{})) all.emplace_back(snapshot_assertion{});
  return plan_checks(all, expected);
}

namespace detail {

inline std::string describe_bounds(const row_count_assertion& count) {
  if (count.equals) return "= " + std::to_string(*count.equals);
  if (count.min && count.max) return "between " + std::to_string(*count.min) + " and " + std::to_string(*count.max);
  if (count.min) return ">= " + std::to_string(*count.min);
  return "<= " + std::to_string(*count.max);
}

// The table's rows as every check counts them (see content_source); a missing table is the
// same error the server gives, so it fails the check as the backup's fault.
inline std::string content_source_of(pqxx::transaction_base& tx, const std::string& table) {
  auto kind = tx.exec(relkind_query(table));
  if (kind.empty()) throw pqxx::undefined_table("relation " + qualified_table(table) + " does not exist");
  return content_source(table, kind[0][0].c_str()[0]);
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

inline void check_sequences(pqxx::connection& connection, step_result& step) {
  pqxx::nontransaction tx(connection);
  // Sequences owned by a column (serial, identity) and sequences a column default calls.
  auto links = tx.exec(R"(
    SELECT DISTINCT s.oid::regclass::text, t.oid::regclass::text, a.attname, seq.seqincrement
    FROM (SELECT d.objid AS seq, d.refobjid AS tbl, d.refobjsubid AS col FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
            AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
          UNION
          SELECT d.refobjid, ad.adrelid, ad.adnum FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
          WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass) l
    JOIN pg_class s ON s.oid = l.seq AND s.relkind = 'S'
    JOIN pg_sequence seq ON seq.seqrelid = s.oid
    JOIN pg_class t ON t.oid = l.tbl
    JOIN pg_attribute a ON a.attrelid = l.tbl AND a.attnum = l.col
    ORDER BY 1, 2, 3)");
  std::string behind;
  for (const auto& link : links) {
    std::string sequence = link[0].c_str(), table = link[1].c_str(), column = link[2].c_str();
    bool ascending = link[3].as<long long>() > 0;
    auto column_edge = tx.exec(std::string("SELECT ") + (ascending ? "max(" : "min(") + quote_ident(column) + ")::text FROM " + table)[0][0];
    if (column_edge.is_null()) continue;
    auto state = tx.exec("SELECT last_value::text, is_called FROM " + sequence)[0];
    // The last value handed out; before the first nextval, one step before last_value.
    long double last = std::stold(state[0].c_str()) - (state[1].as<bool>() ? 0 : link[3].as<long double>());
    long double edge = std::stold(column_edge.c_str());
    if (ascending ? last < edge : last > edge)
      behind += (behind.empty() ? "" : "; ") + sequence + " is at " + state[0].c_str() + " but " + table + "." + column +
                " reaches " + column_edge.c_str() + ": the next insert collides";
  }
  step.expected = "every sequence at or past its column";
  step.actual = behind.empty() ? step.expected : behind;
  pass_or_fail(step, behind.empty(), std::to_string(links.size()) + " sequences at or past their columns",
               "the data, as the source held it (not a restore defect): " + behind);
}

inline void check_large_objects(const check_context& context, step_result& step) {
  checksum_connection connection(*context.target);
  auto restored = read_large_objects(connection);
  const auto& source = context.expected->large_objects;
  step.expected = std::to_string(source.count) + " (" + source.digest + ")";
  step.actual = std::to_string(restored.count) + " (" + restored.digest + ")";
  bool same = restored.count == source.count && restored.digest == source.digest;
  std::string why = restored.count < source.count
                        ? std::to_string(source.count - restored.count) + " of the source's " + std::to_string(source.count) +
                              " large objects are missing from the restore (a dump made with --no-blobs?)"
                        : "large objects differ from the manifest: expected " + step.expected + ", restored " + step.actual;
  pass_or_fail(step, same, std::to_string(restored.count) + " large objects, as in the manifest", why);
}

// Each sequence at or past the value the source had handed out when the backup was taken.
inline void check_sequence_values(const check_context& context, step_result& step) {
  checksum_connection connection(*context.target);
  auto restored = read_sequences(connection);
  std::string behind;
  for (const auto& source : context.expected->sequences) {
    auto found = std::find_if(restored.begin(), restored.end(), [&](const auto& item) { return item.sequence == source.sequence; });
    long long was = source.last_handed_out();
    std::string problem = found == restored.end() ? source.sequence + " is missing from the restore"
                          : (source.increment > 0 ? found->last_handed_out() < was : found->last_handed_out() > was)
                              ? source.sequence + " was restored at " + std::to_string(found->last_handed_out()) +
                                    ", but the source had handed out " + std::to_string(was) + ": it was set back"
                              : "";
    if (!problem.empty()) behind += (behind.empty() ? "" : "; ") + problem;
  }
  step.expected = std::to_string(context.expected->sequences.size()) + " sequences at or past their source values";
  step.actual = behind.empty() ? step.expected : behind;
  pass_or_fail(step, behind.empty(), step.expected, behind);
}

// Populated as in the source. Rows are only reported: pg_dump stores no rows for a materialized
// view but refreshes it at restore, so one that was stale in the source comes back current.
inline void check_matviews(const check_context& context, step_result& step) {
  checksum_connection connection(*context.target);
  auto restored = read_matviews(connection);
  std::string wrong, rows;
  for (const auto& source : context.expected->materialized_views) {
    auto found = std::find_if(restored.begin(), restored.end(), [&](const auto& item) { return item.view == source.view; });
    std::string problem = found == restored.end()                   ? source.view + " is missing from the restore"
                          : source.populated && !found->populated ? source.view + " was restored without data"
                                                                  : "";
    if (!problem.empty()) wrong += (wrong.empty() ? "" : "; ") + problem;
    if (found != restored.end() && found->populated)
      rows += (rows.empty() ? "" : ", ") + source.view + " " + std::to_string(found->rows) + " rows" +
              (source.populated && found->rows != source.rows ? " (the source's, not refreshed since: " + std::to_string(source.rows) + ")" : "");
  }
  step.expected = std::to_string(context.expected->materialized_views.size()) + " materialized views, populated as in the source";
  step.actual = wrong.empty() ? step.expected : wrong;
  pass_or_fail(step, wrong.empty(), step.expected + (rows.empty() ? "" : ": " + rows), wrong);
}

inline void check_schema_objects(const check_context& context, step_result& step) {
  checksum_connection connection(*context.target);
  auto restored = read_schema_objects(connection);
  std::string differ;
  for (const auto& [kind, count] : context.expected->schema_objects) {
    long long now = restored.count(kind) ? restored.at(kind) : 0;
    if (now != count) differ += (differ.empty() ? "" : "; ") + kind + ": " + std::to_string(count) + " in the source, " + std::to_string(now) + " restored";
  }
  step.expected = std::to_string(context.expected->schema_objects.size()) + " kinds of objects as in the source";
  step.actual = differ.empty() ? step.expected : differ;
  pass_or_fail(step, differ.empty(), step.expected, differ);
}

inline void check_extensions(pqxx::connection& connection, const extensions_present_assertion& check, step_result& step) {
  pqxx::nontransaction tx(connection);
  std::string missing;
  for (const auto& extension : check.extensions)
    if (tx.exec("SELECT 1 FROM pg_extension WHERE extname = " + tx.quote(extension)).empty())
      missing += (missing.empty() ? "" : ", ") + extension;
  step.expected = std::to_string(check.extensions.size()) + " extensions";
  step.actual = missing.empty() ? step.expected : "missing: " + missing;
  pass_or_fail(step, missing.empty(), "all present", "extensions missing from the restore: " + missing);
}

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

// One overload per assertion kind: std::visit in run_check needs every kind to have one.
inline void run_assertion(pqxx::connection& connection, const row_count_assertion& check, const check_context& context,
                          step_result& step) {
  check_row_count(connection, check, context, step);
}
inline void run_assertion(pqxx::connection& connection, const tables_present_assertion& check, const check_context&,
                          step_result& step) {
  check_tables_present(connection, check, step);
}
inline void run_assertion(pqxx::connection&, const checksum_assertion&, const check_context&, step_result&) {
  throw std::logic_error("checksums run together through run_checksums");
}
inline void run_assertion(pqxx::connection& connection, const sql_assertion& check, const check_context&, step_result& step) {
  check_sql(connection, check, step);
}
inline void run_assertion(pqxx::connection& connection, const sequences_assertion& check, const check_context& context,
                          step_result& step) {
  check.from_manifest ? check_sequence_values(context, step) : check_sequences(connection, step);
}
// The restored database's collations against the source's: a locale or library version that
// differs sorts and compares text otherwise (ORDER BY, unique keys, range queries).
inline void check_collations(const check_context& context, step_result& step) {
  if (context.locale_unavailable && !context.locale_unavailable->empty()) throw could_not_verify(*context.locale_unavailable);
  checksum_connection connection(*context.target);
  std::map<std::string, collation_state> restored;
  for (auto& collation : read_collations(connection)) restored[collation.collation] = collation;
  std::vector<std::string> differences;
  for (const auto& source : *context.expected->collations) {
    auto found = restored.find(source.collation);
    if (found == restored.end()) {
      differences.push_back(source.collation + ": not in the restore (" + source.locale + " in the source)");
    } else if (found->second.locale != source.locale) {
      differences.push_back(source.collation + ": " + source.locale + " in the source, " + found->second.locale + " in the restore");
    } else if (found->second.version != source.version && !source.version.empty() && !found->second.version.empty()) {
      differences.push_back(source.collation + " (" + source.locale + "): version " + source.version + " in the source, " +
                            found->second.version + " in the restore");
    }
  }
  step.expected = std::to_string(context.expected->collations->size()) + " collations as in the source";
  step.actual = std::to_string(differences.size()) + " differ";
  std::string few;
  list_failures(differences, few, step.detail);
  pass_or_fail(step, differences.empty(), step.expected,
               "the restore sorts text otherwise than the source: " + few);
}

inline void run_assertion(pqxx::connection&, const collations_assertion&, const check_context& context, step_result& step) {
  check_collations(context, step);
}
inline void run_assertion(pqxx::connection&, const large_objects_assertion&, const check_context& context, step_result& step) {
  check_large_objects(context, step);
}
inline void run_assertion(pqxx::connection&, const schema_objects_assertion&, const check_context& context, step_result& step) {
  check_schema_objects(context, step);
}
inline void run_assertion(pqxx::connection&, const materialized_views_assertion&, const check_context& context,
                          step_result& step) {
  check_matviews(context, step);
}
inline void run_assertion(pqxx::connection& connection, const extensions_present_assertion& check, const check_context&,
                          step_result& step) {
  check_extensions(connection, check, step);
}
inline void run_assertion(pqxx::connection& connection, const freshness_assertion& check, const check_context& context,
                          step_result& step) {
  check_freshness(connection, check, context, step);
}

// The referenced roles the target lacks, minus those the scenario accepts losing. The fix is
// named in the scenario's own words.
inline void check_roles(pqxx::connection& connection, const roles_assertion& check, const check_context& context,
                        step_result& step) {
  if (!context.referenced_roles) throw std::runtime_error("the restore did not read which roles the backup refers to");
  std::set<std::string> existing;
  for (const auto& row : pqxx::nontransaction(connection).exec("SELECT rolname FROM pg_catalog.pg_roles")) existing.insert(row[0].c_str());
  const auto& referenced = *context.referenced_roles;
  auto lacking = roles_missing(referenced, existing);
  auto missing = roles_missing(referenced, existing, check.ignore);
  step.expected = "every role the backup refers to";
  step.actual = lacking.empty() ? step.expected : "lacking: " + join(lacking);
  std::string passed = referenced.empty() ? "the backup refers to no roles"
                                          : "all " + std::to_string(referenced.size()) + " roles the backup refers to exist: " +
                                                join(std::vector<std::string>(referenced.begin(), referenced.end()));
  if (missing.empty() && !lacking.empty())
    passed = "the restore lacks " + join(lacking) + " (ownership and grants to them were not restored), accepted by \"ignore\"";
  std::string quoted;
  for (const auto& role : missing) quoted += (quoted.empty() ? "" : ", ") + nlohmann::json(role).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  pass_or_fail(step, missing.empty(), passed,
               "the restore lacks roles the backup refers to: " + join(missing) +
                   "; objects they owned and grants to them were not restored. The backup set does not create them: add "
                   "a pg_dumpall --globals-only file before it in \"backup\", or \"roles\": [" + quoted +
                   "] to the scenario's \"restore\" section to create them, or {\"type\": \"roles\", \"ignore\": [" + quoted +
                   "]} to its \"assertions\" to accept their loss");
}
inline void run_assertion(pqxx::connection& connection, const roles_assertion& check, const check_context& context,
                          step_result& step) {
  check_roles(connection, check, context, step);
}

// An integrity reader's findings as the step's verdict.
inline void judge_integrity(const integrity_report& report, step_result& step) {
  step.expected = "no problem in " + report.covered;
  step.actual = report.findings.empty() ? step.expected : std::to_string(report.findings.size()) + " problems";
  std::vector<std::string> items;
  for (const auto& finding : report.findings) items.push_back(finding.object + ": " + finding.problem);
  std::string few;
  list_failures(items, few, step.detail);
  pass_or_fail(step, report.findings.empty(), "checked " + report.covered, few);
}

inline void run_assertion(pqxx::connection&, const amcheck_assertion&, const check_context& context, step_result& step) {
  judge_integrity(amcheck_database(*context.target), step);
}
inline void run_assertion(pqxx::connection& connection, const constraints_valid_assertion&, const check_context&, step_result& step) {
  judge_integrity(validate_not_valid_constraints(connection), step);
}
inline void run_assertion(pqxx::connection&, const read_all_assertion&, const check_context& context, step_result& step) {
  judge_integrity(read_every_row(*context.target), step);
}
inline void run_assertion(pqxx::connection&, const thorough_assertion&, const check_context&, step_result&) {
  throw std::logic_error("the thorough preset is planned as the kinds it stands for");
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

// The restored schema against the committed reference: missing, unexpected and changed objects,
// a few in the message, every one in the detail.
inline void run_assertion(pqxx::connection& connection, const schema_assertion& check, const check_context& context,
                          step_result& step) {
  auto source = check.from_manifest ? std::string("the manifest") : std::filesystem::path(check.reference).filename().string();
  step.expected = "as in " + source;
  auto reference = check.from_manifest ? *context.expected->schema : read_schema_reference_file(check.reference);
  judge_schema_difference(diff_schema(reference, read_schema_reference(connection)), source, step);
}

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

// This drill against the last passing one, measured after the restore (drift.hpp).
inline void run_assertion(pqxx::connection&, const drift_assertion& check, const check_context& context, step_result& step) {
  if (!context.drift) throw could_not_verify("the drift measures were not taken");
  judge_drift(check, *context.drift, step);
}

// Reports want one-line messages: the rest of a multi-line one goes into the detail.
inline void keep_first_line(step_result& step) {
  if (auto newline = step.message.find('\n'); newline != std::string::npos) {
    step.detail = step.message;
    step.message.erase(newline);
  }
}

// The row-level security policies of the restored database's tables, for a check that could not
// read every row: "; policies that apply: public.t.p, ..." (nothing when there are none).
inline std::string row_policies_in(pqxx::connection& connection) {
  pqxx::read_transaction tx(connection);
  auto row = tx.exec("SELECT string_agg(quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(p.polname), "
                     "', ' ORDER BY 1) FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN "
                     "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relrowsecurity")[0][0];
  return row.is_null() ? "" : std::string("; row-level security policies in the restore: ") + row.c_str() +
                                  " (the drill's role is subject to them: restore with the local or container provider, "
                                  "whose superuser bypasses them)";
}

}  // namespace detail

/// Run one planned check (checksums go through run_checksums). A failed assertion is a result;
/// a missing table is the backup's fault (failed); any other database error means the check
/// could not run (error).
inline step_result run_check(pqxx::connection& connection, const planned_check& planned, const check_context& context) {
  step_result step;
  step.name = planned.name;
  step.kind = planned.kind;
  auto started = std::chrono::steady_clock::now();
  if (!planned.problem.empty()) {
    step.result = outcome::error;
    step.message = planned.problem;
    return step;
  }
  try {
    std::visit([&](const auto& check) { detail::run_assertion(connection, check, context, step); }, planned.check);
  } catch (const pqxx::undefined_table& missing) {
    step.result = outcome::failed;
    step.message = "table missing from the restored database: " + std::string(missing.what());
  } catch (const pqxx::undefined_column& missing) {
    step.result = outcome::failed;
    step.message = "column missing from the restored database: " + std::string(missing.what());
  } catch (const pqxx::insufficient_privilege& failure) {  // row_security is off: rows hidden from the role fail the read
    step.result = outcome::error;
    step.message = "could not see every row: " + detail::trim(failure.what()) + detail::row_policies_in(connection);
  } catch (const pqxx::sql_error& failure) {
    step.result = outcome::error;
    step.message = "could not run (SQLSTATE " + failure.sqlstate() + "): " + failure.what();
  } catch (const std::exception& failure) {
    step.result = outcome::error;
    step.message = std::string("could not run: ") + failure.what();
  }
  step.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  detail::keep_first_line(step);
  return step;
}

/// Progress of the checksums: tables done, tables to do, seconds since they began.
using checksum_progress = std::function<void(std::size_t done, std::size_t total, double seconds)>;

namespace detail {

// A checksum check's result from the checksum taken for it.
inline step_result checksum_step(const planned_check& planned_one, const checksum_outcome& taken) {
  const auto& check = std::get<checksum_assertion>(planned_one.check);
  step_result step;
  step.name = planned_one.name;
  step.kind = "checksum";
  step.seconds = taken.seconds;
  step.expected = check.equals;
  if (!taken.failure.empty()) {
    bool missing = taken.failure.find("does not exist") != std::string::npos;
    step.result = missing ? outcome::failed : outcome::error;
    step.message = missing ? "table missing from the restored database: " + taken.failure : "could not run: " + taken.failure;
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
inline void judge_moving_checksums(const std::vector<planned_check>& planned, const moving_partitions& moving,
                                   std::map<std::size_t, step_result>& results) {
  std::map<std::string, std::vector<std::size_t>> by_root;  // the moving table -> its leaves' checks
  for (const auto& [index, step] : results)
    if (auto root = moving.root_of.find(std::get<checksum_assertion>(planned[index].check).table); root != moving.root_of.end())
      by_root[root->second].push_back(index);
  for (const auto& [root, indexes] : by_root) {
    std::vector<std::string> expected, actual;
    bool any_failed = false, all_read = indexes.size() == moving.leaves_of.at(root).size();
    for (auto index : indexes) {
      const auto& step = results.at(index);
      all_read = all_read && step.result != outcome::error && step.actual.size() == 32;
      any_failed = any_failed || step.result == outcome::failed;
      expected.push_back(std::get<checksum_assertion>(planned[index].check).equals);
      actual.push_back(step.actual);
    }
    if (!any_failed || !all_read) continue;
    const std::string source = digest_sum(expected), restored = digest_sum(actual);
    for (auto index : indexes) {
      auto& step = results.at(index);
      step.detail = moving_rows_reason(root) + (step.detail.empty() ? "" : "\n" + step.detail);
      pass_or_fail(step, source == restored, "content of " + qualified_table(root) + " as a whole as in the source (" + restored + ")",
                   qualified_table(root) + ": the content of its partitions differs from the source's (checksum " + restored +
                       ", expected " + source + ")");
    }
  }
}

}  // namespace detail

/// The checksum checks among `planned` that can run (in plan order).
inline std::vector<planned_checksum> planned_checksums(const std::vector<planned_check>& planned) {
  std::vector<planned_checksum> found;
  for (std::size_t index = 0; index < planned.size(); ++index)
    if (auto check = std::get_if<checksum_assertion>(&planned[index].check); check && planned[index].problem.empty())
      found.push_back({index, check->table, check->columns});
  return found;
}

/// Run every checksum check among `planned` over parallel connections, except those in
/// `taken_during_restore` (whose sums are judged as they are); results by index into `planned`
/// (other kinds are absent). `progress` hears about every second while they run.
inline std::map<std::size_t, step_result> run_checksums(const endpoint& target, const std::vector<planned_check>& planned,
                                                        int parallel = 0, const checksum_progress& progress = {},
                                                        const std::map<std::size_t, checksum_outcome>& taken_during_restore = {},
                                                        const moving_partitions* moving = nullptr) {
  std::vector<std::size_t> indexes;
  std::vector<std::string> tables;
  std::vector<std::vector<std::string>> columns;
  std::map<std::size_t, step_result> results;
  for (const auto& check : planned_checksums(planned)) {
    if (auto taken = taken_during_restore.find(check.index); taken != taken_during_restore.end()) {
      auto step = detail::checksum_step(planned[check.index], taken->second);
      step.detail += (step.detail.empty() ? "" : "\n") + std::string("checksummed as soon as the restore had loaded the table");
      results.emplace(check.index, std::move(step));
      continue;
    }
    indexes.push_back(check.index);
    tables.push_back(check.table);
    columns.push_back(check.columns);
  }
  auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  std::atomic<std::size_t> done{0};
  checksum_batch batch;
  {
    detail::ticker tick(tables.empty() || !progress ? std::function<void()>{} : [&] { progress(done, tables.size(), elapsed()); },
                        std::chrono::seconds(1));
    batch = checksum_tables(target, tables, columns, parallel, "", [&] { ++done; });
  }
  double seconds_each = elapsed() / static_cast<double>(std::max<std::size_t>(1, indexes.size()));  // the batch runs in parallel
  for (std::size_t position = 0; position < indexes.size(); ++position)
    results.emplace(indexes[position], detail::checksum_step(planned[indexes[position]],
                                                             {batch.sums[position], batch.failures[position], seconds_each}));
  if (moving) detail::judge_moving_checksums(planned, *moving, results);
  return results;
}

/// Run planned checks against the database `target`: checksums together over parallel
/// connections, the others one by one on one connection. Results come in plan order, each also
/// handed to `on_result` as it is known; if the database cannot be reached, the checks left are
/// errors (could not run).
inline std::vector<step_result> run_checks(const endpoint& target, const std::vector<planned_check>& planned,
                                           const check_context& context,
                                           const std::function<void(const step_result&)>& on_result = {},
                                           const checksum_progress& progress = {}) {
  std::vector<step_result> results;
  auto record = [&](step_result step) {
    if (on_result) on_result(step);
    results.push_back(std::move(step));
  };
  std::size_t done = 0;
  try {
    pqxx::connection connection(target.conninfo());
    // A policy must never hide rows from a check: reading such a table fails instead (as a checksum's does).
    pqxx::nontransaction(connection).exec("SET row_security = off");
    auto moving = detail::read_moving_partitions(connection);
    check_context with_moving = context;
    with_moving.moving = &moving;
    auto checksums = run_checksums(target, planned, 0, progress,
                                   context.checksummed_during_restore ? *context.checksummed_during_restore
                                                                      : std::map<std::size_t, checksum_outcome>{},
                                   &moving);
    signals::throw_if_interrupted();  // checksums a signal cancelled, and the checks after them, did not run
    auto watch = signals::cancel_on_signal([&] {
      try {
        connection.cancel_query();
      } catch (const std::exception&) {  // the check then ends by itself
      }
    });
    for (; done < planned.size(); ++done) {
      signals::throw_if_interrupted();  // SIGINT or SIGTERM: the checks left do not run
      auto checksum = checksums.find(done);
      record(checksum != checksums.end() ? checksum->second : run_check(connection, planned[done], with_moving));
    }
  } catch (const std::exception& failure) {
    for (; done < planned.size(); ++done) {
      step_result step;
      step.name = planned[done].name;
      step.kind = planned[done].kind;
      step.result = outcome::error;
      bool stopped = dynamic_cast<const interrupted*>(&failure) != nullptr;
      step.message = (stopped ? "not run: " : "could not connect to the restored database: ") + std::string(failure.what());
      detail::keep_first_line(step);
      record(step);
    }
  }
  return results;
}

}  // namespace pgdrill
