// One drill as a pipeline: locate the backup, provision a server, restore, check, tear down.
#pragma once

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>  // optional backup and server between stages
#include <string>

#include <pqxx/pqxx>

#include <pgdrill/backup.hpp>
#include <pgdrill/checks.hpp>
#include <pgdrill/container.hpp>
#include <pgdrill/existing.hpp>
#include <pgdrill/hygiene.hpp>
#include <pgdrill/local.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/restore.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// How a drill runs, beyond what the scenario says.
struct drill_options {
  local_options local;  ///< binaries, temp space and cache of the local provider
  container_options container;          ///< engine and image of the container provider
  std::optional<endpoint> existing;     ///< the existing provider's server (default: libpq env / DATABASE_URL)
  std::string provider;                 ///< overrides the scenario's provider when set
  /// Called as each stage or check finishes (console progress).
  std::function<void(const step_result&)> on_step;
  /// Called while a restore runs, about four times a second (a progress bar).
  restore_progress on_progress;
};

namespace detail {

// Runs one stage: times it, and turns exceptions into outcomes (could not run = error).
class stage_runner {
 public:
  stage_runner(drill_result& result, const drill_options& options) : result_(result), options_(options) {}

  /// Run `body` as stage `name` unless an earlier stage stopped the drill; the body returns
  /// passed/failed and may fill the message.
  void stage(const std::string& name, const std::function<outcome(step_result&)>& body) {
    step_result step;
    step.name = name;
    step.kind = "stage";
    if (!stopped_by_.empty()) {
      step.message = "not reached: " + stopped_by_;
      return record(result_.stages, step);
    }
    auto started = std::chrono::steady_clock::now();
    try {
      step.result = body(step);
    } catch (const std::exception& failure) {
      // A damaged backup is the backup's fault (failed); anything else means the stage could not run.
      bool damaged = dynamic_cast<const corrupt_backup*>(&failure) != nullptr;
      step.result = damaged ? outcome::failed : outcome::error;
      std::string text = (damaged ? "truncated or corrupt archive: " : "") + std::string(failure.what());
      auto newline = text.find('\n');
      step.message = text.substr(0, newline);
      if (newline != std::string::npos) step.detail = text;
    }
    step.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (step.result != outcome::passed) stopped_by_ = name + (step.result == outcome::failed ? " failed" : " could not run");
    record(result_.stages, step);
  }

  void record(std::vector<step_result>& list, const step_result& step) {
    list.push_back(step);
    if (options_.on_step) options_.on_step(step);
  }

  const std::string& stopped_by() const { return stopped_by_; }

 private:
  drill_result& result_;
  const drill_options& options_;
  std::string stopped_by_;
};

}  // namespace detail

namespace detail {

inline std::string join_paths(const std::vector<backup_info>& backups) {
  std::string text;
  for (const auto& backup : backups) text += (text.empty() ? "" : ", ") + backup.path.string();
  return text;
}

// Roles, extensions and SQL the scenario asks for before the restore. Returns the roles it
// created (on a shared server they are dropped again at teardown).
inline std::vector<std::string> prepare_target(server& target_server, const endpoint& target, const restore_spec& spec) {
  std::vector<std::string> created;
  pqxx::connection server_connection(target_server.admin().conninfo());
  pqxx::nontransaction server_tx(server_connection);
  for (const auto& role : spec.roles) {
    if (!server_tx.exec("SELECT 1 FROM pg_roles WHERE rolname = " + server_tx.quote(role)).empty()) continue;
    server_tx.exec("CREATE ROLE " + quote_ident(role));
    created.push_back(role);
  }
  pqxx::connection connection(target.conninfo());
  pqxx::nontransaction tx(connection);
  for (const auto& extension : spec.extensions) tx.exec("CREATE EXTENSION IF NOT EXISTS " + quote_ident(extension));
  if (!spec.sql_before.empty()) tx.exec(spec.sql_before);
  return created;
}

// The server a drill restores into, as the scenario (or the caller) chooses; `why` says which
// provider was used and, for auto, why.
inline std::unique_ptr<server> provision(const scenario& plan, const drill_options& options,
                                         std::optional<int> source_major, std::string& why) {
  std::string provider = options.provider.empty() ? plan.provider : options.provider;
  auto container = [&] {
    container_options settings = options.container;
    if (!plan.container_engine.empty()) settings.engine = plan.container_engine;
    if (!plan.container_image.empty()) settings.image_template = plan.container_image;
    if (source_major) settings.major = *source_major;
    settings.settings.insert(settings.settings.end(), plan.server_settings.begin(), plan.server_settings.end());
    auto engine = container_engine::find(settings.engine);
    settings.engine = engine.program.string();
    reap_containers(engine);
    return std::unique_ptr<server>(container_server::start(settings));
  };
  if (provider == "auto") {
    try {
      auto engine = container_engine::find(plan.container_engine.empty() ? options.container.engine : plan.container_engine);
      why = "auto: container engine " + engine.program.string() + " works; ";
      provider = "container";
    } catch (const could_not_verify& missing) {
      why = "auto: local, since " + std::string(missing.what()).substr(0, std::string(missing.what()).find(';')) + "; ";
      provider = "local";
    }
  }
  if (provider == "container") return container();
  if (provider == "existing") return existing_server::attach(options.existing ? *options.existing : endpoint_from_conninfo(""));
  local_options local = options.local;
  local.min_major = source_major;
  local.settings.insert(local.settings.end(), plan.server_settings.begin(), plan.server_settings.end());
  return local_server::start(local);
}

}  // namespace detail

/// Run a whole drill. Never throws for a stage that fails or cannot run: that is in the result
/// (see drill_result::verdict). The server is gone when this returns, whatever happened.
inline drill_result run_drill(const scenario& plan, const drill_options& options = {}) {
  drill_result result;
  result.scenario = plan.name;
  result.started_at = detail::iso8601_utc(std::time(nullptr));
  auto started = std::chrono::steady_clock::now();
  detail::stage_runner runner(result, options);

  std::vector<backup_info> backups;  // what is restored, in order
  std::optional<manifest> expected;  // the manifest beside the (first) backup, when there is one
  runner.stage("locate backup", [&](step_result& step) {
    std::vector<backup_info> all_in_directory;
    if (!plan.backup.files.empty()) {
      for (const auto& file : plan.backup.files) backups.push_back(inspect_file(file));
      for (auto& backup : backups) backup.chosen_because = "part of the scenario's backup set";
    } else if (!plan.backup.file.empty()) {
      backups.push_back(inspect_file(plan.backup.file));
      backups.back().chosen_because = "named in the scenario";
    } else {
      all_in_directory = list_backups(plan.backup.directory, plan.backup.pattern);
      backups.push_back(latest_of(all_in_directory, plan.backup.directory, plan.backup.pattern));
    }
    const auto& first = backups.front();
    std::uintmax_t total = 0;
    for (const auto& backup : backups) total += backup.size;
    result.properties["backup.file"] = detail::join_paths(backups);
    result.properties["backup.size_bytes"] = std::to_string(total);
    result.properties["backup.format"] = to_string(first.format);
    result.properties["backup.compression"] = to_string(first.compressed);
    result.properties["backup.taken_at"] = detail::iso8601_utc(first.taken_at());
    result.properties["backup.chosen_because"] = first.chosen_because;
    step.message = (backups.size() > 1 ? std::to_string(backups.size()) + " files, " + std::to_string(total) + " bytes: " +
                                             first.chosen_because
                                       : first.path.filename().string() + " (" + to_string(first.format) +
                                             (first.compressed != compression::none ? std::string(", ") + to_string(first.compressed) : "") +
                                             ", " + std::to_string(first.size) + " bytes): " + first.chosen_because);

    // Every report names the exact bytes drilled; hygiene reuses the hash for the sidecar check.
    for (auto& backup : backups)
      if (std::filesystem::is_regular_file(backup.path)) backup.sha256 = sha256_file(backup.path);
    result.properties["backup.sha256"] = first.sha256;

    // Hygiene runs before any server: each check its own result.
    for (const auto& backup : backups)
      for (auto& check : check_backup_file(backup, plan.hygiene)) {
        if (backups.size() > 1) check.name += " " + backup.path.filename().string();
        runner.record(result.checks, check);
      }
    for (auto& check : check_retention(all_in_directory, plan.hygiene.retention)) runner.record(result.checks, check);
    if (auto file = manifest_path_for(first.path); std::filesystem::exists(file)) {
      expected = load_manifest(file);
      result.properties["backup.manifest"] = file.string();
      step.message += "; manifest " + file.filename().string() + " (" + std::to_string(expected->tables.size()) + " tables)";
    }

    for (const auto& backup : backups)
      if (backup.format == backup_format::unknown) {
        step.message = backup.path.string() + " is not a pg_dump backup (no known format in its " +
                       (backup.compressed != compression::none ? "decompressed " : "") + "first bytes)";
        return outcome::failed;
      }
    return outcome::passed;
  });

  std::optional<int> source_major;
  runner.stage("inspect backup", [&](step_result& step) {
    auto tools = find_binaries(options.local.binaries);  // the newest tools read the most archive versions
    std::size_t toc_entries = 0;
    for (const auto& backup : backups) {
      auto contents = read_contents(backup, tools);
      toc_entries += contents.toc.size();
      if (auto major = contents.source_major(); major && (!source_major || *major > *source_major)) {
        source_major = major;
        result.properties["backup.source_version"] = contents.source_version;
        result.properties["backup.pg_dump_version"] = contents.dump_version;
      }
      step.message = "dumped from PostgreSQL " + (contents.source_version.empty() ? "(unknown)" : contents.source_version) +
                     " by pg_dump " + (contents.dump_version.empty() ? "(unknown)" : contents.dump_version) +
                     (contents.toc.empty() ? "" : "; table of contents: " + contents.toc_summary());
    }
    result.properties["backup.toc_entries"] = std::to_string(toc_entries);
    return outcome::passed;
  });

  std::unique_ptr<server> server;
  pg_binaries tools;  // pg_restore and psql: the local server's own, else the host's, at least the backup's major
  runner.stage("provision server", [&](step_result& step) {
    reap_leftovers(options.local.temp_root);
    std::string why;
    try {
      server = detail::provision(plan, options, source_major, why);
      if (auto* local = dynamic_cast<local_server*>(server.get())) {
        tools = local->binaries();
      } else {
        binary_search clients = options.local.binaries;
        clients.required = {"pg_restore", "psql"};
        tools = find_binaries(clients, source_major);
      }
    } catch (const could_not_verify& failure) {
      if (!source_major) throw;
      throw could_not_verify("the backup was dumped from PostgreSQL " + result.properties["backup.source_version"] +
                             " and needs a server at least that new: " + failure.what());
    }
    result.properties["server.provider"] = server->provider();
    result.properties["server.version"] = server->version();
    step.message = why + server->describe();
    return outcome::passed;
  });

  std::optional<double> restore_seconds;
  std::optional<endpoint> target;
  std::vector<std::string> created_roles;
  runner.stage("restore", [&](step_result& step) {
    target = server->restore_target();
    scratch_dir scratch(options.local.temp_root);  // decompressed archives, when -j needs one
    auto restore_started = std::chrono::steady_clock::now();
    created_roles = detail::prepare_target(*server, *target, plan.restore);
    std::vector<std::string> summaries;
    for (const auto& backup : backups) {
      auto restored = restore_backup(backup, *target, tools, plan.restore, scratch.path(), options.on_progress);
      result.properties["restore.tool"] = restored.tool;
      result.properties["restore.jobs"] = std::to_string(restored.jobs);
      summaries.push_back(restored.summary());
      if (!restored.ok) {
        step.message = (backups.size() > 1 ? backup.path.filename().string() + ": " : "") + restored.summary();
        step.detail = restored.command_line + "\n" + restored.stderr_tail;
        return outcome::failed;
      }
    }
    if (!plan.restore.sql_after.empty()) {
      pqxx::connection connection(target->conninfo());
      pqxx::nontransaction(connection).exec(plan.restore.sql_after);
    }
    restore_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - restore_started).count();
    result.properties["restore.seconds"] = std::to_string(*restore_seconds);
    step.message = backups.size() > 1 ? "restored " + std::to_string(backups.size()) + " files in order in " +
                                            detail::seconds_text(*restore_seconds)
                                      : summaries.front();
    return outcome::passed;
  });

  if (plan.restore.max_seconds) {
    step_result rto{"restore time", "rto", outcome::skipped, "not reached: " + runner.stopped_by(), "", "", "", 0};
    rto.expected = "<= " + detail::seconds_text(*plan.restore.max_seconds);
    if (restore_seconds) {
      rto.actual = detail::seconds_text(*restore_seconds);
      rto.result = *restore_seconds <= *plan.restore.max_seconds ? outcome::passed : outcome::failed;
      rto.message = "restore took " + rto.actual + " (recovery time objective " + rto.expected + ")";
    }
    runner.record(result.checks, rto);
  }

  auto planned = plan_checks(plan.assertions, expected ? &*expected : nullptr);
  check_context context;
  context.expected = expected ? &*expected : nullptr;
  if (!backups.empty()) context.backup_time = backups.front().taken_at();
  if (expected)
    if (auto created = timestamp_in_name(expected->created_at)) context.backup_time = *created;
  if (runner.stopped_by().empty()) {
    auto checksums = run_checksums(*target, planned);  // all tables at once, over parallel connections
    std::size_t done = 0;
    try {
      pqxx::connection connection(target->conninfo());
      for (; done < planned.size(); ++done) {
        auto checksum = checksums.find(done);
        runner.record(result.checks, checksum != checksums.end() ? checksum->second : run_check(connection, planned[done], context));
      }
    } catch (const std::exception& failure) {
      for (; done < planned.size(); ++done)
        runner.record(result.checks, step_result{planned[done].name, planned[done].kind, outcome::error,
                                                 std::string("could not connect to the restored database: ") + failure.what(),
                                                 "", "", "", 0});
    }
  } else {
    for (const auto& check : planned)
      runner.record(result.checks, step_result{check.name, check.kind, outcome::skipped, "not reached: " + runner.stopped_by(),
                                               "", "", "", 0});
  }

  // Teardown always runs, whatever stopped the drill.
  step_result teardown{"teardown", "stage", outcome::passed, "nothing to tear down", "", "", "", 0};
  auto teardown_started = std::chrono::steady_clock::now();
  if (server) {
    try {
      std::string what = server->describe();
      server->stop();
      if (server->shared() && !created_roles.empty()) {  // after the database that used them is gone
        pqxx::connection connection(server->admin().conninfo());
        for (const auto& role : created_roles) pqxx::nontransaction(connection).exec("DROP ROLE " + detail::quote_ident(role));
      }
      teardown.message = "stopped and removed " + what;
    } catch (const std::exception& failure) {
      teardown.result = outcome::error;
      teardown.message = failure.what();
    }
    server.reset();
  }
  teardown.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - teardown_started).count();
  runner.record(result.stages, teardown);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace pgdrill
