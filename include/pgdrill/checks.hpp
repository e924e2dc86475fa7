// A drill's checks: the plan computed from a scenario and the backup's manifest, and running it
// against the restored database. Each kind of check is planned and run in its family's header
// under detail/checks/; this header dispatches to them.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/check_plan.hpp>
#include <pgdrill/checksum.hpp>
#include <pgdrill/checksums_during_restore.hpp>
#include <pgdrill/detail/checks/context.hpp>
#include <pgdrill/detail/checks/drift.hpp>
#include <pgdrill/detail/checks/objects.hpp>
#include <pgdrill/detail/checks/queries.hpp>
#include <pgdrill/detail/checks/rows.hpp>
#include <pgdrill/detail/checks/snapshot.hpp>
#include <pgdrill/detail/checks/structure.hpp>
#include <pgdrill/detail/ticker.hpp>
#include <pgdrill/failure.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>

namespace pgdrill {

/// Expand and name a scenario's assertions. `expected` is the backup's manifest (may be null:
/// assertions that need it are planned with a problem). Every kind has its `plan_check`
/// overload: a kind without one does not compile.
inline check_plan plan_checks(const std::vector<assertion>& assertions, const manifest* expected) {
  detail::check_planner planner(expected);
  for (const auto& each : assertions) std::visit([&](const auto& check) { detail::plan_check(check, planner); }, each);
  return std::move(planner).finish();
}

/// A scenario's checks as every drill runs them (`pgdrill run`, `verify`, the GoogleTest
/// harness): its assertions, plus the standing checks every drill has unless the scenario
/// states its own: an empty restore never passes (not_empty), and the roles the restore lacked
/// are shown (roles).
inline check_plan plan_scenario_checks(const scenario& plan, const manifest* expected) {
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
/// an exception is judged by judge_failure (a missing table or column fails the check, anything
/// else means it could not run).
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
    std::visit(
        [&](const auto& check) {
          using kind = std::decay_t<decltype(check)>;
          if constexpr (detail::runs_alone<kind>) detail::run_assertion(connection, check, context, step);
          else throw std::logic_error(std::string(kind::kind) + " checks are not run one by one");
        },
        planned.check);
  } catch (const std::exception& failure) {
    record_failure(step, failure, failure_site::check);
    if (sqlstate_of(failure) == sqlstate::insufficient_privilege) step.message += detail::row_policies_in(connection);
  }
  step.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  detail::keep_first_line(step);
  return step;
}

/// Progress of the checksums: tables done, tables to do, seconds since they began.
using checksum_progress = std::function<void(std::size_t done, std::size_t total, double seconds)>;

namespace detail {

// The checksums of `planned` over parallel connections, each result judged by checksum_step.
inline std::map<check_id, step_result> take_checksums(const endpoint& target, const check_plan& plan,
                                                      const std::vector<planned_checksum>& planned, int parallel,
                                                      const checksum_progress& progress) {
  std::vector<std::string> tables;
  std::vector<std::vector<std::string>> columns;
  for (const auto& check : planned) {
    tables.push_back(check.table);
    columns.push_back(check.columns);
  }
  auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  std::atomic<std::size_t> done{0};
  checksum_batch batch;
  {
    ticker tick(tables.empty() || !progress ? std::function<void()>{} : [&] { progress(done, tables.size(), elapsed()); },
                std::chrono::seconds(1));
    batch = checksum_tables(target, tables, columns, parallel, "", [&] { ++done; });
  }
  double seconds_each = elapsed() / static_cast<double>(std::max<std::size_t>(1, planned.size()));  // the batch runs in parallel
  std::map<check_id, step_result> results;
  for (std::size_t position = 0; position < planned.size(); ++position)
    results.emplace(planned[position].check, checksum_step(*plan.find(planned[position].check),
                                                           {batch.sums[position], batch.failures[position], seconds_each}));
  return results;
}

}  // namespace detail

/// Run every checksum check of `plan` over parallel connections, except those in
/// `taken_during_restore` (whose sums are judged as they are); results by check id (other kinds
/// are absent). `progress` hears about every second while they run.
inline std::map<check_id, step_result> run_checksums(const endpoint& target, const check_plan& plan, int parallel = 0,
                                                     const checksum_progress& progress = {},
                                                     const std::map<check_id, checksum_outcome>& taken_during_restore = {},
                                                     const detail::moving_partitions* moving = nullptr) {
  std::vector<planned_checksum> to_take;
  std::map<check_id, step_result> judged;
  for (auto& check : plan.checksums()) {
    auto taken = taken_during_restore.find(check.check);
    if (taken == taken_during_restore.end()) {
      to_take.push_back(std::move(check));
      continue;
    }
    auto step = detail::checksum_step(*plan.find(check.check), taken->second);
    step.detail += (step.detail.empty() ? "" : "\n") + std::string("checksummed as soon as the restore had loaded the table");
    judged.emplace(check.check, std::move(step));
  }
  judged.merge(detail::take_checksums(target, plan, to_take, parallel, progress));
  if (moving) detail::judge_moving_checksums(plan, *moving, judged);
  return judged;
}

/// Run a plan's checks against the database `target`: checksums together over parallel
/// connections, the others one by one on one connection. Results come in plan order, each also
/// handed to `on_result` as it is known; if the database cannot be reached, the checks left are
/// errors (could not run).
inline std::vector<step_result> run_checks(const endpoint& target, const check_plan& plan, const check_context& context,
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
    auto checksums = run_checksums(target, plan, 0, progress,
                                   context.checksummed_during_restore ? *context.checksummed_during_restore
                                                                      : std::map<check_id, checksum_outcome>{},
                                   &moving);
    signals::throw_if_interrupted();  // checksums a signal cancelled, and the checks after them, did not run
    auto watch = signals::cancel_on_signal([&] {
      try {
        connection.cancel_query();
      } catch (const std::exception&) {  // the check then ends by itself
      }
    });
    for (; done < plan.size(); ++done) {
      signals::throw_if_interrupted();  // SIGINT or SIGTERM: the checks left do not run
      auto checksum = checksums.find(plan[done].name);
      record(checksum != checksums.end() ? checksum->second : run_check(connection, plan[done], with_moving));
    }
  } catch (const std::exception& failure) {
    for (; done < plan.size(); ++done) {
      step_result step = make_step(plan[done].name, plan[done].kind, outcome::error, "");
      record_failure(step, failure, failure_site::drill, "could not connect to the restored database");
      detail::keep_first_line(step);
      record(step);
    }
  }
  return results;
}

}  // namespace pgdrill
