// The checks of structure: collations, the schema reference, roles, and the integrity kinds
// (amcheck, constraints_valid, read_all, and the thorough preset of them).
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pgdrill/integrity.hpp>
#include <pgdrill/objects.hpp>
#include <pgdrill/roles.hpp>
#include <pgdrill/schema.hpp>
#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

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
inline void plan_check(const collations_assertion& check, check_planner& planner) {
  planner.add_needing_recorded(check, planner.expected() && planner.expected()->collations, "collations");
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
inline void plan_check(const schema_assertion& check, check_planner& planner) {
  check.from_manifest ? planner.add_needing_recorded(check, planner.expected() && planner.expected()->schema, "schema reference")
                      : planner.add(check);
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
inline void plan_check(const roles_assertion& check, check_planner& planner) { planner.add(check); }

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
inline void plan_check(const amcheck_assertion& check, check_planner& planner) { planner.add(check); }
inline void plan_check(const constraints_valid_assertion& check, check_planner& planner) { planner.add(check); }
inline void plan_check(const read_all_assertion& check, check_planner& planner) { planner.add(check); }

// The thorough preset is planned as the kinds it stands for: collations too where a manifest recorded them.
template <>
constexpr bool runs_alone<thorough_assertion> = false;

inline void plan_check(const thorough_assertion&, check_planner& planner) {
  planner.add(amcheck_assertion{});
  planner.add(constraints_valid_assertion{});
  planner.add(read_all_assertion{});
  if (planner.expected() && planner.expected()->collations) planner.add(collations_assertion{});
}

}  // namespace pgdrill::detail
