// One drill as a pipeline of named stages over an explicit state: locate the backups, check
// their hygiene, inspect them, provision a server, restore, check, tear down. `run_drill`, the
// runner's commands and the GoogleTest harness all run these same stages.
#pragma once

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>  // facts found by one stage for the next
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/backup.hpp>
#include <pgdrill/binaries.hpp>
#include <pgdrill/checks.hpp>
#include <pgdrill/container.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/time.hpp>
#include <pgdrill/drift.hpp>
#include <pgdrill/existing.hpp>
#include <pgdrill/hygiene.hpp>
#include <pgdrill/local.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/objects.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/restore.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/schema.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// How a drill runs, beyond what the scenario says.
struct drill_options {
  local_options local;  ///< binaries, temp space and cache of the local provider
  container_options container;          ///< engine and image of the container provider
  std::optional<endpoint> existing;     ///< the existing provider's server (default: libpq env / DATABASE_URL)
  std::string provider;                 ///< overrides the scenario's provider when set
  bool restore_as_given_role = false;   ///< existing provider: as scenario::restore_as_given_role, from the command line
  /// Called as each stage or check finishes (console progress).
  std::function<void(const step_result&)> on_step;
  /// Called while a restore runs, about four times a second (a progress bar).
  restore_progress on_progress;
  /// Called about every second while the checksums run.
  checksum_progress on_checksum_progress;
  /// Checksum each table as soon as a parallel restore has loaded it, while the rest restores
  /// (checksums_during_restore.hpp); false: every checksum after the restore.
  bool checksums_during_restore = true;
};

/// Everything the stages of one drill share: what they were asked, what they found and what
/// they started. Each stage reads what earlier ones left here and adds its own part.
struct drill_state {
  drill_state(scenario plan_, drill_options options_)
      : plan(std::move(plan_)), options(std::move(options_)), planned(plan_scenario_checks(plan, nullptr)) {
    result.scenario = plan.name;
    result.started_at = detail::iso8601_utc(std::time(nullptr));
  }

  scenario plan;
  drill_options options;
  drill_result result;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  located_backups located;              ///< locate: what is restored, in order
  std::optional<manifest> expected;     ///< locate: the manifest beside the first backup
  std::optional<int> needed_major;      ///< inspect: the newest major the set needs (source server or pg_dump)
  /// inspect: what each backup is, in order; a table of contents unread on this host is read by
  /// the restore's tools
  std::vector<backup_contents> contents;
  std::unique_ptr<server> target_server;  ///< provision
  pg_binaries tools;                    ///< provision: pg_restore and psql that restore into it
  std::optional<endpoint> target;       ///< restore: the database restored into
  std::optional<std::set<std::string>> referenced_roles;  ///< restore: roles the backups' SQL refers to
  std::optional<drift_measures> drift;  ///< after the restore, when a drift check is planned
  std::optional<snapshot_load> snapshot;  ///< restore: what loading a JSON snapshot found
  /// The checks stage runs right after the restore, on the restored database (run_drill; not the
  /// GoogleTest harness, whose tests may change it first): checksums may then be taken during it.
  bool checks_follow_restore = false;
  /// The checks this drill runs: planned without a manifest, then once more when locate found one.
  check_plan planned;
  /// restore: the checksums taken while it went on, by check
  std::map<check_id, checksum_outcome> checksummed_during_restore;
  std::string stopped_by;               ///< the first stage that failed or could not run
  /// restore: why the restore database could not be made like the source's (its locale is not
  /// installed where the server runs); the checks of text ordering cannot judge then
  std::string locale_unavailable;

  /// Record a check's result (and the rows it counted) and tell the caller's on_step.
  void record_check(const step_result& step) {
    if (step.rows && !step.table.empty()) result.table_rows[step.table] = *step.rows;
    result.checks.push_back(step);
    detail::notify(options.on_step, step);
  }
  void record_stage(const step_result& step) {
    result.stages.push_back(step);
    detail::notify(options.on_step, step);
  }
  /// The first backup's source database encoding and locale, as far as it was read: an
  /// archive's own, else (plain SQL) the database default its manifest recorded.
  database_locale source_locale() const {
    database_locale locale;
    if (contents.empty()) return locale;
    locale = contents.front().locale;
    locale.encoding = contents.front().encoding;
    if (locale.known() || !expected || !expected->collations) return locale;
    for (const auto& collation : *expected->collations)
      if (collation.collation == "database default") {
        auto encoding = locale.encoding;
        locale = database_locale::described(collation.locale);
        locale.encoding = encoding;
      }
    return locale;
  }
  /// Entries of every table of contents read.
  std::size_t toc_entries() const {
    std::size_t entries = 0;
    for (const auto& backup : contents) entries += backup.toc.size();
    return entries;
  }
  /// What checks need besides the database: the backup's own time (the manifest's, else the file's).
  check_context context() const {
    check_context context;
    context.expected = expected ? &*expected : nullptr;
    context.target = target ? &*target : nullptr;
    context.referenced_roles = referenced_roles ? &*referenced_roles : nullptr;
    context.drift = drift ? &*drift : nullptr;
    context.snapshot = snapshot ? &*snapshot : nullptr;
    context.checksummed_during_restore = &checksummed_during_restore;
    context.locale_unavailable = &locale_unavailable;
    if (!located.backups.empty()) context.backup_time = located.backups.front().taken_at();
    if (expected)
      if (auto created = timestamp_in_name(expected->created_at)) context.backup_time = *created;
    return context;
  }
  drill_result finish() {
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
  }
};

/// What every drill checks of its backups before any server: their hygiene, and the first one
/// against what its manifest recorded of it (`pgdrill verify` checks the same).
inline std::vector<step_result> backup_checks(const located_backups& located, const hygiene_spec& spec, const manifest* expected) {
  auto steps = verify_backups(located, spec);
  if (expected && !located.backups.empty())
    if (auto recorded = backup_as_recorded(located.backups.front(), *expected)) steps.push_back(*recorded);
  return steps;
}

/// The manifest beside the first of the located backups, if there is one; a JSON snapshot's
/// own manifest otherwise.
inline std::optional<manifest> manifest_beside(const located_backups& found) {
  if (found.backups.empty()) return std::nullopt;
  const auto& first = found.backups.front();
  auto file = manifest_path_for(first.path);
  if (std::filesystem::exists(file)) return load_manifest(file);
  if (first.format == backup_format::json_snapshot) return manifest_of_snapshot(read_snapshot_manifest(first.path), first.path);
  return std::nullopt;
}

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace detail

using stage_body = std::function<outcome(drill_state&, step_result&)>;
using check_stage_body = std::function<void(drill_state&)>;

/// Run `body` as the stage `name`, timed, unless an earlier stage stopped the drill (then it is
/// recorded as skipped, "not reached"). An exception is the stage's outcome, as judge_failure
/// says: a damaged backup failed it, anything else means it could not run.
inline void run_stage(drill_state& state, const std::string& name, const stage_body& body) {
  step_result step;
  step.name = name;
  step.kind = "stage";
  if (!state.stopped_by.empty()) {
    step.message = "not reached: " + state.stopped_by;
    return state.record_stage(step);
  }
  auto started = std::chrono::steady_clock::now();
  try {
    step.result = body(state, step);
  } catch (const std::exception& failure) {
    record_failure(step, failure, failure_site::drill, "");
    detail::keep_first_line(step);
  }
  step.seconds = detail::seconds_since(started);
  if (step.result != outcome::passed)
    state.stopped_by = name + (step.result == outcome::failed ? " failed" : " could not run");
  state.record_stage(step);
}

/// Run a stage that records checks rather than being one (hygiene, restore time, assertions);
/// an exception becomes an error result named `name`, so nothing escapes before teardown.
inline void run_check_stage(drill_state& state, const std::string& name, const check_stage_body& body) {
  try {
    body(state);
  } catch (const std::exception& failure) {
    step_result step = make_step(name, name, outcome::error, "");
    record_failure(step, failure, failure_site::drill);
    detail::keep_first_line(step);
    state.record_check(step);
  }
}

namespace detail {

// "the backup was dumped from PostgreSQL 13.16 by pg_dump 17.11 and needs PostgreSQL 17 or newer"
inline std::string what_the_backup_needs(const drill_state& state) {
  return "the backup was dumped from PostgreSQL " + state.result.backup.source_version + " by pg_dump " +
         state.result.backup.pg_dump_version + " and needs PostgreSQL " + std::to_string(*state.needed_major) + " or newer";
}

// A server or tools older than the backup needs (an image or server the user chose) cannot
// judge it: exit 2 before the restore, never a "broken backup" from a version mismatch.
inline void require_new_enough(const drill_state& state) {
  if (!state.needed_major) return;
  const int needed = *state.needed_major;
  std::string too_old;
  if (state.target_server->major_version() < needed) too_old = "the server is PostgreSQL " + state.target_server->version();
  else if (state.tools.major < needed) too_old = "the tools are PostgreSQL " + state.tools.version + " (" + state.tools.where() + ")";
  if (too_old.empty()) return;
  throw could_not_verify(what_the_backup_needs(state) + ", but " + too_old + " (" + state.target_server->describe() +
                         "); use a server or image of PostgreSQL " + std::to_string(needed) + " or newer");
}

inline std::unique_ptr<server> start_local(const drill_state& state) {
  local_options local = state.options.local;
  local.min_major = state.needed_major;
  local.settings.insert(local.settings.end(), state.plan.server_settings.begin(), state.plan.server_settings.end());
  return local_server::start(local);
}

inline std::string engine_wanted(const drill_state& state) {
  return state.plan.container_engine.empty() ? state.options.container.engine : state.plan.container_engine;
}

inline std::unique_ptr<server> start_container(const drill_state& state) {
  container_options settings = state.options.container;
  settings.engine = engine_wanted(state);
  settings.temp_root = state.options.local.temp_root;
  if (!state.plan.container_image.empty()) settings.image_template = state.plan.container_image;
  if (!state.plan.container_host.empty()) settings.host = state.plan.container_host;
  if (state.needed_major) settings.major = *state.needed_major;
  for (const auto& backup : state.located.backups) settings.read_only_paths.push_back(backup.path);
  if (!state.plan.restore.schema.dump.empty()) settings.read_only_paths.push_back(state.plan.restore.schema.dump);
  settings.settings.insert(settings.settings.end(), state.plan.server_settings.begin(), state.plan.server_settings.end());
  auto engine = container_engine::find(settings.engine);
  settings.engine = engine.program.string();
  reap_containers(engine);
  return container_server::start(settings);
}

inline std::unique_ptr<server> attach_existing(const drill_state& state) {
  return existing_server::attach(state.options.existing ? *state.options.existing : endpoint_from_conninfo(""),
                                 state.plan.restore_as_given_role || state.options.restore_as_given_role);
}

// "auto": the container provider when an engine answers, else local; `why` says which and why.
inline provider_kind choose_automatically(const drill_state& state, std::string& why) {
  try {
    auto engine = container_engine::find(engine_wanted(state));
    why = "auto: container engine " + engine.program.string() + " works; ";
    return provider_kind::container;
  } catch (const could_not_verify& missing) {
    std::string reason = missing.what();
    why = "auto: local, since " + reason.substr(0, reason.find(';')) + "; ";
    return provider_kind::local;
  }
}

inline std::unique_ptr<server> start_provider(const drill_state& state, std::string& why) {
  auto kind = provider_named(state.options.provider.empty() ? state.plan.provider : state.options.provider).kind;
  if (kind == provider_kind::automatic) kind = choose_automatically(state, why);
  switch (kind) {
    case provider_kind::local: return start_local(state);
    case provider_kind::container: return start_container(state);
    case provider_kind::existing: return attach_existing(state);
    case provider_kind::automatic: break;
  }
  throw std::logic_error("auto resolves to another provider");
}

// What the checks covered of the restored database (see coverage_facts).
inline coverage_facts measure_coverage(const drill_state& state, const std::vector<step_result>& results) {
  coverage_facts coverage;
  checksum_connection connection(*state.target);
  auto tables = user_tables(connection);
  coverage.tables.total = static_cast<long long>(tables.size());
  coverage.large_objects.total = std::stoll(first_value(connection, "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata"));
  coverage.sequences.total = static_cast<long long>(user_relations(connection, 'S').size());
  coverage.materialized_views.total = static_cast<long long>(user_relations(connection, 'm').size());
  std::set<std::string> counted;
  for (const auto& step : results)
    if (step.rows && std::find(tables.begin(), tables.end(), step.table) != tables.end()) counted.insert(step.table);
  coverage.tables.covered = static_cast<long long>(counted.size());
  for (const auto& step : results) {
    const auto* planned = state.planned.find(step.name);
    if ((step.result == outcome::passed || step.result == outcome::failed) && planned && state.expected)
      cover_objects(planned->check, *state.expected, coverage);
  }
  coverage.measured = true;
  return coverage;
}

// The checks of the scenario's last drill in its history (none when there is no readable one).
inline std::vector<recorded_step> last_drills_checks(const scenario& plan) {
  if (!plan.history) return {};
  try {
    auto entries = read_history(*plan.history, plan.name);
    if (!entries.empty()) return entries.back().steps;
  } catch (const std::exception&) {  // the names then stand for what they check; the verdict is the same
  }
  return {};
}

// Each planned check's stable name when the drill stops before running them. A manifest-wide
// check no manifest expanded takes the names its kind had in the last drill, so a trend view
// keeps every case of a night whose backup was missing.
inline std::vector<std::pair<std::string, std::string>> names_not_reached(const drill_state& state) {
  const auto& planned = state.planned;
  std::vector<std::pair<std::string, std::string>> names;  // name, kind
  std::vector<recorded_step> before;
  if (planned.has_unexpanded()) before = last_drills_checks(state.plan);
  std::set<std::string> taken;
  for (const auto& check : planned) taken.insert(check.name);
  for (const auto& check : planned) {
    std::size_t added = 0;
    if (check.per_manifest_table)
      for (const auto& earlier : before)
        if (earlier.kind == check.kind && taken.insert(earlier.name).second) {
          names.emplace_back(earlier.name, earlier.kind);
          ++added;
        }
    if (added == 0) names.emplace_back(check.name, check.kind);
  }
  return names;
}

}  // namespace detail

namespace stages {

/// Find the backups, hash them for the report, read the manifest beside the first; a file whose
/// bytes are no known format fails the drill.
inline outcome locate(drill_state& state, step_result& step) {
  state.located = locate_backups(state.plan.backup);
  auto& backups = state.located.backups;
  auto& facts = state.result.backup;
  const auto& first = backups.front();
  for (auto& backup : backups) {
    facts.files.push_back(backup.path.string());
    facts.size_bytes += backup.size;
    if (std::filesystem::is_regular_file(backup.path)) backup.sha256 = sha256_file(backup.path);  // hygiene reuses it
  }
  facts.format = to_string(first.format);
  facts.compression = to_string(first.compressed);
  facts.taken_at = detail::iso8601_utc(first.taken_at());
  facts.chosen_because = first.chosen_because;
  step.detail = detail::join(state.located.skipped, "\n");
  facts.sha256 = first.sha256;
  step.message = backups.size() > 1
                     ? std::to_string(backups.size()) + " files, " + std::to_string(facts.size_bytes) + " bytes: " + first.chosen_because
                     : first.path.filename().string() + " (" + facts.format +
                           (first.compressed != compression::none ? ", " + facts.compression : "") + ", " +
                           std::to_string(first.size) + " bytes): " + first.chosen_because;
  for (const auto& backup : backups)
    if (backup.format == backup_format::unknown) {
      step.message = backup.path.string() + " is not a PostgreSQL backup: " +
                     (backup.compressed != compression::none ? "decompressed, it" : "it") + " looks like " +
                     (backup.looks_like.empty() ? "no format pg_dump writes" : backup.looks_like);
      return outcome::failed;
    }
  if ((state.expected = manifest_beside(state.located))) {
    auto file = state.expected->from_snapshot ? first.path : manifest_path_for(first.path);
    facts.manifest = file.string();
    step.message += std::string(state.expected->from_snapshot ? "; its own manifest" : "; manifest " + file.filename().string()) + " (" +
                    std::to_string(state.expected->tables.size()) + " tables)";
  }
  return outcome::passed;
}

/// Size, age, mode, sidecar and retention: before any server, whatever the other stages do.
inline void hygiene(drill_state& state) {
  if (state.located.backups.empty()) return;
  for (const auto& check : backup_checks(state.located, state.plan.hygiene, state.expected ? &*state.expected : nullptr))
    state.record_check(check);
}

/// Versions from the backups' own bytes, and archives' tables of contents where this host's
/// newest tools can read them (else the restore's tools read them where the drill runs).
inline outcome inspect(drill_state& state, step_result& step) {
  for (const auto& backup : state.located.backups) {
    auto contents = read_contents_here(backup, state.options.local.binaries);
    if (auto major = contents.needed_major(); major && (!state.needed_major || *major > *state.needed_major)) {
      state.needed_major = major;
      state.result.backup.source_version = contents.source_version;
      state.result.backup.pg_dump_version = contents.dump_version;
    }
    step.message = backup.format == backup_format::json_snapshot
                       ? "a JSON snapshot: rows only, no PostgreSQL version (any server loads it into the scenario's schema)"
                       : "dumped from " + contents.origin() +
                             (contents.archive_version.empty() ? "" : " (archive format " + contents.archive_version + ")") +
                             (contents.toc.empty() ? "" : "; table of contents: " + contents.toc_summary());
    if (!contents.toc_unread.empty()) step.detail = "table of contents not read on this host: " + contents.toc_unread;
    state.contents.push_back(std::move(contents));
  }
  state.result.backup.toc_entries = state.toc_entries();
  return outcome::passed;
}

/// A server as the scenario (or the caller) chooses, and the tools that restore into it. The
/// leftovers of killed drills are reaped first.
inline outcome provision(drill_state& state, step_result& step) {
  reap_leftovers(state.options.local.temp_root);
  std::string why;
  try {
    state.target_server = detail::start_provider(state, why);
    state.tools = state.target_server->client_tools(state.options.local.binaries, state.needed_major);
  } catch (const could_not_verify& failure) {
    if (!state.needed_major) throw;
    throw could_not_verify(detail::what_the_backup_needs(state) + " (server and tools); install it, or use the container provider: " +
                           failure.what());
  }
  state.result.server = {state.target_server->provider(), state.target_server->version()};
  detail::require_new_enough(state);
  state.result.restore.tools_version = state.tools.version;
  state.result.restore.tools_location = state.tools.where();
  // Why this major: the local provider takes the oldest installed that is new enough, the
  // container provider the image of exactly that major.
  std::string need = state.needed_major ? "the backup needs PostgreSQL " + std::to_string(*state.needed_major) + " or newer; " : "";
  step.message = why + need + state.target_server->describe() + "; tools: PostgreSQL " + state.tools.version + " in " +
                 state.tools.where();
  return outcome::passed;
}

/// The tables of contents inspect could not read on this host, read by the restore's own tools
/// (in the container, say): the source encoding and the entry count then include them.
inline void read_contents_with_restore_tools(drill_state& state) {
  bool read = false;
  for (std::size_t index = 0; index < state.contents.size(); ++index)
    if (!state.contents[index].toc_unread.empty()) {
      state.contents[index] = read_contents(state.located.backups[index], state.tools);
      read = true;
    }
  if (read) state.result.backup.toc_entries = state.toc_entries();
}

// The checksums to take while the restore goes on: none when the drill judges the restore's own
// duration (recovery time objective, drift of the restore time), so nothing of the drill's
// competes with the restore it times.
inline std::vector<planned_checksum> checksums_to_take_during_restore(const drill_state& state) {
  if (!state.checks_follow_restore || !state.options.checksums_during_restore || state.plan.restore.max_seconds ||
      state.contents.size() != 1 || detail::times_the_restore(state.planned))
    return {};
  return state.planned.checksums();
}

// The restore database, like the source's where the server can make it. Where it cannot (the
// source's locale is not installed there), the server's default, said in the restore's detail:
// rows and content are still judged, the checks of text ordering cannot be.
inline endpoint restore_target_like_source(drill_state& state, step_result& step) {
  auto source = state.source_locale();
  try {
    return state.target_server->restore_target(source);
  } catch (const could_not_verify& unavailable) {
    if (!source.known()) throw;
    state.locale_unavailable = unavailable.what();
    step.detail = "restored into the server's default locale: " + state.locale_unavailable;
    database_locale server_default;
    server_default.encoding = source.encoding;
    return state.target_server->restore_target(server_default);
  }
}

/// The backup set restored into the server's restore target; planned checksums are taken as
/// the tables load.
inline outcome restore(drill_state& state, step_result& step) {
  read_contents_with_restore_tools(state);
  state.target = restore_target_like_source(state, step);
  std::optional<checksums_during_restore> checksums;
  std::map<int, const toc_entry*> table_data;  // by dump id, as pg_restore names what it finished
  if (auto planned = checksums_to_take_during_restore(state); !planned.empty()) {
    std::function<pid_t(pid_t)> host_pid;
    if (state.target_server->provider() == "local")
      host_pid = [&server = *state.target_server](pid_t inner) { return server.host_pid_of(inner); };
    checksums.emplace(*state.target, std::move(planned), std::move(host_pid));
    for (const auto& entry : state.contents.front().toc)
      if (entry.type == "TABLE DATA") table_data[entry.id] = &entry;
  }
  auto on_table_data = [&](int dump_id) {
    if (auto found = table_data.find(dump_id); found != table_data.end()) {
      checksums->loaded(found->second->schema, found->second->name);
      table_data.erase(found);
    }
  };
  auto restored = restore_set(*state.target_server, *state.target, state.tools, state.located.backups, state.plan.restore,
                              state.options.local.temp_root, state.options.on_progress,
                              checksums ? table_data_finished(on_table_data) : table_data_finished{});
  auto& facts = state.result.restore;
  facts.tool = restored.tool;
  facts.jobs = restored.jobs;
  for (const auto& error : restored.tolerated)  // pg_restore names no statement for some: its own line then
    facts.tolerated.push_back(error.reason + ": " + (error.statement.empty() ? error.line : error.statement));
  facts.adjustments = restored.adjustments;
  step.message = restored.message;
  if (!restored.detail.empty()) step.detail += (step.detail.empty() ? "" : "\n") + restored.detail;
  for (const auto& line : facts.adjustments) step.detail += (step.detail.empty() ? "" : "\n") + line;
  for (const auto& error : restored.tolerated)
    step.detail += (step.detail.empty() ? "" : "\n") + ("tolerated (" + error.reason + "): " + error.line);
  if (!restored.ok) return restored.environment_fault ? outcome::error : outcome::failed;
  if (!restored.database.empty()) state.target = state.target->with_database(facts.database = restored.database);
  state.referenced_roles = restored.referenced_roles;
  state.snapshot = std::move(restored.snapshot);
  facts.seconds = restored.seconds;
  if (checksums) {
    // The restore is over, so every table is loaded, also those whose progress line went unread
    // (pg_restore's processes share stderr, and another's output can break a line up).
    if (restored.named_items)
      for (const auto& [dump_id, entry] : table_data) checksums->loaded(entry->schema, entry->name);
    state.checksummed_during_restore = checksums->finish();
    step.detail += (step.detail.empty() ? "" : "\n") + std::to_string(state.checksummed_during_restore.size()) +
                   " table checksum(s) taken while the restore went on";
  }
  return outcome::passed;
}

/// The recovery time objective, when the scenario sets one.
inline void rto(drill_state& state) {
  const auto& limit = state.plan.restore.max_seconds;
  if (!limit) return;
  step_result step = make_step("restore time", "rto", outcome::skipped, "not reached: " + state.stopped_by);
  step.expected = "<= " + detail::seconds_text(*limit);
  if (const auto& took = state.result.restore.seconds) {
    step.actual = detail::seconds_text(*took);
    step.result = *took <= *limit ? outcome::passed : outcome::failed;
    step.message = "restore took " + step.actual + " (recovery time objective " + step.expected + ")";
  }
  state.record_check(step);
}

/// Every assertion of the scenario against the restored database; "not reached" after a stop.
inline void checks(drill_state& state) {
  if (!state.stopped_by.empty()) {
    for (const auto& [name, kind] : detail::names_not_reached(state))
      state.record_check(make_step(name, kind, outcome::skipped, "not reached: " + state.stopped_by));
    return;
  }
  auto results = run_checks(*state.target, state.planned, state.context(), [&](const step_result& step) { state.record_check(step); },
                            state.options.on_checksum_progress);
  try {
    state.result.coverage = detail::measure_coverage(state, results);
  } catch (const std::exception&) {  // the checks said what went wrong; a report without coverage shows it was not measured
  }
}

/// What the drift checks compare, measured once after the restore: the scenario's last passing
/// drill in its history, and this drill's row counts and schema (which its own history line
/// keeps for the drills after it).
inline void measure_for_drift(drill_state& state) {
  auto aspects = detail::drift_aspects(state.planned);
  if (aspects.empty() || !state.stopped_by.empty()) return;
  auto& measures = state.drift.emplace();
  measures.history = state.plan.history.value_or(std::filesystem::path());
  measures.backup_size = state.result.backup.size_bytes;
  measures.restore_seconds = state.result.restore.seconds;
  try {
    if (!measures.history.empty()) measures.baseline = last_passing_drill(measures.history, state.plan.name);
    if (aspects.count(drift_aspect::rows)) {
      std::vector<std::string> counted_before;  // tables the baseline's checks counted, partitioned parents included
      if (measures.baseline)
        for (const auto& [table, rows] : measures.baseline->tables) counted_before.push_back(table);
      measures.rows = count_rows_of_user_tables(*state.target, counted_before);
      state.result.table_rows.insert(measures.rows.begin(), measures.rows.end());
    }
    if (aspects.count(drift_aspect::schema)) {
      pqxx::connection connection(state.target->conninfo());
      measures.schema = read_schema_reference(connection);
      state.result.schema_reference = measures.schema;
    }
  } catch (const std::exception& failure) {
    measures.problem = failure.what();
  }
}

/// Stop and remove the server, then drop the roles the drill created on a shared one. Runs
/// whatever stopped the drill, and never throws.
inline void teardown(drill_state& state) {
  signals::finishing despite_signals;
  step_result step = make_step("teardown", "stage", outcome::passed, "nothing to tear down");
  auto started = std::chrono::steady_clock::now();
  if (auto& server = state.target_server) {
    try {
      std::string what = server->describe();
      server->stop();
      step.message = "stopped and removed " + what;
    } catch (const std::exception& failure) {
      step.result = outcome::error;
      step.message = failure.what();
    }
    server.reset();
  }
  step.seconds = detail::seconds_since(started);
  state.record_stage(step);
}

}  // namespace stages

namespace detail {

// A drill stopped by SIGINT or SIGTERM verified nothing it can vouch for: exit 2, whatever the
// checks that had finished said.
inline void record_interruption(drill_state& state) {
  if (int number = signals::received())
    state.record_stage(make_step("interrupted", "stage", outcome::error,
                                 std::string("stopped by signal ") + std::to_string(number) + " (" + strsignal(number) +
                                     "): the drill was torn down before it finished"));
}

}  // namespace detail

/// The stages up to a restored database that is still running: shared by run_drill and the
/// GoogleTest harness, which runs its tests between these and teardown.
inline void run_restore_stages(drill_state& state) {
  run_stage(state, "locate backup", stages::locate);
  if (state.expected) state.planned = plan_scenario_checks(state.plan, &*state.expected);
  run_check_stage(state, "hygiene", stages::hygiene);
  run_stage(state, "inspect backup", stages::inspect);
  run_stage(state, "provision server", stages::provision);
  run_stage(state, "restore", stages::restore);
  run_check_stage(state, "restore time", stages::rto);
  stages::measure_for_drift(state);
}

/// A backup's schema reference, and the drill that read it: the backup restored as `plan` says,
/// the reference read, the server torn down. When the restore did not complete, `restored` is
/// false and the result's stages say why.
struct backup_schema {
  bool restored = false;
  std::vector<std::string> lines;
  drill_result result;
};

inline backup_schema schema_of_backup(const scenario& plan, const drill_options& options = {}) {
  drill_state state(plan, options);
  run_restore_stages(state);
  backup_schema schema;
  if (state.stopped_by.empty()) {
    try {
      pqxx::connection connection(state.target->conninfo());
      schema.lines = read_schema_reference(connection);
      schema.restored = true;
    } catch (const std::exception& failure) {
      state.record_stage(make_step("read schema", "stage", outcome::error, failure.what()));
    }
  }
  stages::teardown(state);
  schema.result = state.finish();
  return schema;
}

/// Run a whole drill. Never throws for a stage that fails or cannot run: that is in the result
/// (see drill_result::verdict). The server is gone when this returns, whatever happened.
inline drill_result run_drill(const scenario& plan, const drill_options& options = {}) {
  drill_state state(plan, options);
  state.checks_follow_restore = true;
  run_restore_stages(state);
  run_check_stage(state, "checks", stages::checks);
  stages::teardown(state);
  detail::record_interruption(state);
  return state.finish();
}

}  // namespace pgdrill
