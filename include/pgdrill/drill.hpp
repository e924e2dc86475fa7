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
#include <pgdrill/local.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/restore.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// How a drill runs, beyond what the scenario says.
struct drill_options {
  local_options local;  ///< binaries, temp space and cache of the local provider
  /// Called as each stage or check finishes (console progress).
  std::function<void(const step_result&)> on_step;
};

/// The name of the database the backup is restored into on a throwaway server.
constexpr const char* restore_database = "pgdrill_restore";

namespace detail {

inline std::string iso8601_utc(std::time_t when) {
  char text[32];
  std::tm parts{};
  ::gmtime_r(&when, &parts);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

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
      step.result = outcome::error;
      std::string text = failure.what();
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

/// Run a whole drill. Never throws for a stage that fails or cannot run: that is in the result
/// (see drill_result::verdict). The server is gone when this returns, whatever happened.
inline drill_result run_drill(const scenario& plan, const drill_options& options = {}) {
  drill_result result;
  result.scenario = plan.name;
  result.started_at = detail::iso8601_utc(std::time(nullptr));
  auto started = std::chrono::steady_clock::now();
  detail::stage_runner runner(result, options);

  std::optional<backup_info> backup;
  runner.stage("locate backup", [&](step_result& step) {
    backup = plan.backup.file.empty() ? find_latest(plan.backup.directory, plan.backup.pattern)
                                      : inspect_file(plan.backup.file);
    if (backup->chosen_because.empty()) backup->chosen_because = "named in the scenario";
    result.properties["backup.file"] = backup->path.string();
    result.properties["backup.size_bytes"] = std::to_string(backup->size);
    result.properties["backup.format"] = to_string(backup->format);
    result.properties["backup.compression"] = to_string(backup->compressed);
    result.properties["backup.taken_at"] = detail::iso8601_utc(backup->taken_at());
    result.properties["backup.chosen_because"] = backup->chosen_because;
    step.message = backup->path.filename().string() + " (" + to_string(backup->format) + ", " +
                   std::to_string(backup->size) + " bytes): " + backup->chosen_because;
    if (backup->format == backup_format::unknown && backup->compressed == compression::none) {
      step.message = backup->path.string() + " is not a pg_dump backup (no known format in its first bytes)";
      return outcome::failed;
    }
    return outcome::passed;
  });

  std::unique_ptr<local_server> server;
  runner.stage("provision server", [&](step_result& step) {
    local_options local = options.local;
    local.settings.insert(local.settings.end(), plan.server_settings.begin(), plan.server_settings.end());
    reap_leftovers(local.temp_root);
    server = local_server::start(local);
    result.properties["server.provider"] = server->provider();
    result.properties["server.version"] = server->version();
    step.message = server->describe();
    return outcome::passed;
  });

  runner.stage("restore", [&](step_result& step) {
    {
      pqxx::connection admin(server->admin().conninfo());
      pqxx::nontransaction tx(admin);
      tx.exec(std::string("CREATE DATABASE ") + restore_database);
    }
    auto restored = restore_backup(*backup, server->admin().with_database(restore_database), server->binaries(),
                                   plan.restore);
    result.properties["restore.tool"] = restored.tool;
    result.properties["restore.jobs"] = std::to_string(restored.jobs);
    result.properties["restore.seconds"] = std::to_string(restored.seconds);
    step.message = restored.summary();
    step.detail = restored.ok ? "" : restored.command_line + "\n" + restored.stderr_tail;
    return restored.ok ? outcome::passed : outcome::failed;
  });

  const auto names = check_names(plan.assertions);
  auto record_unreached = [&](outcome why, const std::string& message) {
    for (std::size_t index = result.checks.size(); index < plan.assertions.size(); ++index)
      runner.record(result.checks, step_result{names[index], "check", why, message, "", "", "", 0});
  };
  if (runner.stopped_by().empty()) {
    try {
      pqxx::connection target(server->admin().with_database(restore_database).conninfo());
      for (std::size_t index = 0; index < plan.assertions.size(); ++index)
        runner.record(result.checks, run_check(target, plan.assertions[index], names[index]));
    } catch (const std::exception& failure) {
      record_unreached(outcome::error, std::string("could not connect to the restored database: ") + failure.what());
    }
  } else {
    record_unreached(outcome::skipped, "not reached: " + runner.stopped_by());
  }

  // Teardown always runs, whatever stopped the drill.
  step_result teardown{"teardown", "stage", outcome::passed, "nothing to tear down", "", "", "", 0};
  auto teardown_started = std::chrono::steady_clock::now();
  if (server) {
    try {
      std::string what = server->describe();
      server->stop();
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
