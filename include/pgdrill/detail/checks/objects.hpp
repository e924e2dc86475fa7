// The checks of objects besides tables: sequences, large objects, materialized views, schema
// object counts, extensions; and what they cover of a restore.
#pragma once

#include <algorithm>
#include <string>
#include <variant>

#include <pgdrill/objects.hpp>
#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

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

inline void run_assertion(pqxx::connection& connection, const sequences_assertion& check, const check_context& context,
                          step_result& step) {
  check.from_manifest ? check_sequence_values(context, step) : check_sequences(connection, step);
}
inline void plan_check(const sequences_assertion& check, check_planner& planner) {
  check.from_manifest ? planner.add_needing_objects(check) : planner.add(check);
}

inline void run_assertion(pqxx::connection&, const large_objects_assertion&, const check_context& context, step_result& step) {
  check_large_objects(context, step);
}
inline void plan_check(const large_objects_assertion& check, check_planner& planner) { planner.add_needing_objects(check); }

inline void run_assertion(pqxx::connection&, const materialized_views_assertion&, const check_context& context,
                          step_result& step) {
  check_matviews(context, step);
}
inline void plan_check(const materialized_views_assertion& check, check_planner& planner) { planner.add_needing_objects(check); }

inline void run_assertion(pqxx::connection&, const schema_objects_assertion&, const check_context& context, step_result& step) {
  check_schema_objects(context, step);
}
inline void plan_check(const schema_objects_assertion& check, check_planner& planner) {
  planner.expected() && planner.expected()->schema_objects.empty() ? planner.add(check, "this manifest records no schema object counts")
                                                                   : planner.add_needing_objects(check);
}

inline void run_assertion(pqxx::connection& connection, const extensions_present_assertion& check, const check_context&,
                          step_result& step) {
  check_extensions(connection, check, step);
}
inline void plan_check(const extensions_present_assertion& check, check_planner& planner) { planner.add(check); }

// What a check that ran (passed or failed) covered of the restore's large objects, sequences and
// materialized views: all of them that the manifest recorded.
inline void cover_objects(const assertion& check, const manifest& expected, coverage_facts& coverage) {
  auto manifest_sequences = std::get_if<sequences_assertion>(&check);
  if (std::holds_alternative<large_objects_assertion>(check)) coverage.large_objects.covered = coverage.large_objects.total;
  if (manifest_sequences && manifest_sequences->from_manifest)
    coverage.sequences.covered = std::min<long long>(coverage.sequences.total, static_cast<long long>(expected.sequences.size()));
  if (std::holds_alternative<materialized_views_assertion>(check))
    coverage.materialized_views.covered =
        std::min<long long>(coverage.materialized_views.total, static_cast<long long>(expected.materialized_views.size()));
}

}  // namespace pgdrill::detail
