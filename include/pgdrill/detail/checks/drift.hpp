// The drift checks: this drill against the scenario's last passing one.
#pragma once

#include <set>
#include <string>

#include <pgdrill/drift.hpp>
#include <pqxx/pqxx>

#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill::detail {

// This drill against the last passing one, measured after the restore (drift.hpp).
inline void run_assertion(pqxx::connection&, const drift_assertion& check, const check_context& context, step_result& step) {
  if (!context.drift) throw could_not_verify("the drift measures were not taken");
  judge_drift(check, *context.drift, step);
}
// One check per aspect asked for, each named after it.
inline void plan_check(const drift_assertion& check, check_planner& planner) {
  auto aspect = [&](drift_aspect which, double limit, bool warn_only) {
    auto one = check;
    one.aspect = which;
    one.limit = limit;
    one.warn_only = warn_only;
    if (!check.name.empty()) one.name = check.name + one.default_name().substr(std::string(check.kind).size());
    planner.add(one);
  };
  if (check.max_row_drop) aspect(drift_aspect::rows, *check.max_row_drop, false);
  if (check.max_size_drop) aspect(drift_aspect::backup_size, *check.max_size_drop, false);
  if (check.max_restore_growth) aspect(drift_aspect::restore_time, *check.max_restore_growth, false);
  if (!check.schema.empty()) aspect(drift_aspect::schema, 0, check.schema == "warn");
}

/// The aspects the plan's drift checks compare (measured once after the restore).
inline std::set<drift_aspect> drift_aspects(const check_plan& plan) {
  std::set<drift_aspect> aspects;
  for (const auto* drift : plan.runnable_of_kind<drift_assertion>()) aspects.insert(drift->aspect);
  return aspects;
}

/// Whether a drift check judges the restore's own duration: nothing of the drill may then
/// compete with the restore it times.
inline bool times_the_restore(const check_plan& plan) {
  auto aspects = drift_aspects(plan);
  return aspects.count(drift_aspect::restore_time) > 0 || aspects.count(drift_aspect::all) > 0;
}

}  // namespace pgdrill::detail
