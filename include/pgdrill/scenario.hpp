// A drill scenario: which backup, which server, how to restore, what to assert. Parsed strictly.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>  // optional bounds and report paths
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/assertions.hpp>
#include <pgdrill/detail/json_reader.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>

namespace pgdrill {

/// PostgreSQL settings as name/value pairs, applied in order (a later one wins).
using setting_list = std::vector<std::pair<std::string, std::string>>;

/// Where a drill's server comes from: one row per provider, read by the scenario parser, the
/// runner's options and provisioning.
enum class provider_kind { local, container, existing, automatic };

struct provider_info {
  provider_kind kind;
  const char* name;     ///< as scenarios and --provider spell it
  const char* summary;  ///< one line for help texts
};

inline const std::vector<provider_info>& providers() {
  static const std::vector<provider_info> table{
      {provider_kind::local, "local", "a throwaway server from the installed PostgreSQL, in a private temp dir"},
      {provider_kind::container, "container", "a throwaway docker.io/library/postgres:{major} container (docker or podman)"},
      {provider_kind::existing, "existing", "a scratch database on a server you name, dropped afterwards"},
      {provider_kind::automatic, "auto", "container when an engine works, else local"}};
  return table;
}

inline std::vector<std::string> provider_names() {
  std::vector<std::string> names;
  for (const auto& provider : providers()) names.push_back(provider.name);
  return names;
}

/// The provider a name means; usage_error for an unknown name.
inline const provider_info& provider_named(const std::string& name) {
  for (const auto& provider : providers())
    if (name == provider.name) return provider;
  throw usage_error("unknown provider '" + name + "' (one of: " + detail::join(provider_names()) + ")");
}

/// Retention over all backups in a directory: a nightly job that silently stopped, or a policy
/// that deletes more than promised, shows up here.
struct retention_spec {
  std::optional<int> min_count;           ///< at least this many backups
  std::optional<double> min_oldest_days;  ///< the oldest is at least this old
  std::optional<double> max_gap_hours;    ///< no gap between consecutive backups longer than this
};

/// Checks on the chosen backup file, before any server; each one its own result.
struct hygiene_spec {
  std::uintmax_t min_size_bytes = 1024;  ///< a dump under 1 KiB is treated as a failure by default
  std::optional<double> max_age_hours;
  bool private_mode = false;  ///< the file must not be readable by group or others
  /// FILE.sha256 sidecar: "if_present" checks it when it exists, "required" also fails without one.
  std::string sha256_sidecar = "if_present";
  retention_spec retention;
};

/// Where the backup comes from: one file, the newest file in a directory matching a glob, or
/// a set of files restored in order (e.g. one plain dump per table).
struct backup_source {
  std::filesystem::path file;       ///< one file (or a directory-format archive)
  std::filesystem::path directory;  ///< or: the newest match in this directory
  std::string pattern = "*";
  std::vector<std::filesystem::path> files;  ///< or: a backup set, restored in this order
};

/// Limits on what a scenario may ask for: a duration past a year overflows the clocks it is
/// measured with, and each restore job is a server connection.
constexpr long long max_timeout_seconds = 365LL * 24 * 3600;
constexpr int max_restore_jobs = 1000;

/// Where a JSON snapshot's schema comes from (a snapshot holds rows only): exactly one of these.
struct snapshot_schema {
  std::filesystem::path dump;        ///< a schema-only pg_dump, in any format
  std::filesystem::path migrations;  ///< a directory of .sql files, applied in natural order (V2 before V10)
  std::string sql;                   ///< SQL text
  bool given() const { return !dump.empty() || !migrations.empty() || !sql.empty(); }
};

/// How the backup is restored.
struct restore_spec {
  int jobs = 0;                        ///< pg_restore -j; 0: the number of cores
  std::chrono::seconds timeout{0};     ///< 0: no limit
  bool no_owner = true;                ///< pg_restore --no-owner
  bool no_privileges = true;           ///< pg_restore --no-privileges
  bool single_transaction = false;     ///< psql / pg_restore --single-transaction
  std::vector<std::string> roles;      ///< created before the restore (owners and grantees the dump names)
  std::vector<std::string> extensions; ///< created in the target database before the restore
  std::string sql_before, sql_after;   ///< run in the target database around the restore
  std::optional<double> max_seconds;   ///< recovery time objective: the restore must finish within it
  std::string database;                ///< of a backup that creates its own (pg_dumpall, --create): the one the checks examine
  snapshot_schema schema;              ///< of a JSON snapshot: the schema its rows are loaded into
};

/// A parsed scenario. Paths are absolute, resolved against the scenario file's directory.
struct scenario {
  std::string name;
  std::string description;
  std::filesystem::path file;  ///< the scenario file itself (empty when built in code)
  backup_source backup;
  std::string provider = "local";  ///< local, container, existing, auto
  std::string container_engine;    ///< container provider: docker, podman (empty: detect)
  std::string container_image;     ///< container provider: image template, {major} replaced
  std::string container_host;      ///< container provider: where its port is reached (empty: from the engine's environment)
  /// existing provider: restore as the given role (never a superuser) where the drill's own role
  /// cannot be made or may not log in, instead of stopping (exit 2) with what to change.
  bool restore_as_given_role = false;
  setting_list server_settings;  ///< over the restore-tuned defaults
  restore_spec restore;
  hygiene_spec hygiene;
  std::vector<assertion> assertions;
  std::optional<std::filesystem::path> junit;        ///< report path; the runner has a default
  std::optional<std::filesystem::path> json_report;  ///< JSON report path
  std::optional<std::filesystem::path> history;      ///< history file a line is appended to
  std::optional<std::filesystem::path> summary_md;   ///< Markdown verdict (appended)
  std::optional<std::filesystem::path> metrics;      ///< Prometheus text-format metrics
};

namespace detail {

inline std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& text) {
  std::filesystem::path path(text);
  return (path.is_absolute() ? path : base / path).lexically_normal();
}
}  // namespace detail

namespace detail {

inline backup_source parse_backup_source(const json_reader& root, const std::filesystem::path& base) {
  auto backup = root.object("backup", {"file", "directory", "pattern", "files"});
  backup_source source;
  if (auto file = backup.optional<std::string>("file")) source.file = resolve_path(base, *file);
  if (auto dir = backup.optional<std::string>("directory")) source.directory = resolve_path(base, *dir);
  source.pattern = backup.optional<std::string>("pattern").value_or("*");
  for (const auto& file : backup.strings("files")) source.files.push_back(resolve_path(base, file));
  if (backup.has("files") && source.files.empty()) backup.fail(backup.pointer_of("files"), "needs at least one file");
  if (!source.file.empty() + !source.directory.empty() + !source.files.empty() != 1)
    backup.fail(backup.pointer(), "give exactly one of 'file', 'directory' or 'files'");
  if (source.directory.empty() && backup.has("pattern"))
    backup.fail(backup.pointer_of("pattern"), "'pattern' goes with 'directory'");
  return source;
}

inline hygiene_spec parse_hygiene(const json_reader& root, const backup_source& source) {
  hygiene_spec spec;
  if (!root.has("hygiene")) return spec;
  auto hygiene = root.object("hygiene", {"min_size_bytes", "max_age_hours", "private_mode", "sha256_sidecar", "retention"});
  if (auto size = hygiene.optional<long long>("min_size_bytes")) {
    if (*size < 0) hygiene.fail(hygiene.pointer_of("min_size_bytes"), "must be 0 or more");
    spec.min_size_bytes = static_cast<std::uintmax_t>(*size);
  }
  spec.max_age_hours = hygiene.optional<double>("max_age_hours");
  spec.private_mode = hygiene.optional<bool>("private_mode").value_or(false);
  spec.sha256_sidecar = hygiene.one_of("sha256_sidecar", {"if_present", "required", "ignore"}, "if_present");
  if (hygiene.has("retention")) {
    auto retention = hygiene.object("retention", {"min_count", "min_oldest_days", "max_gap_hours"});
    if (source.directory.empty()) retention.fail(retention.pointer(), "retention checks need 'backup.directory'");
    spec.retention.min_count = retention.optional<int>("min_count");
    spec.retention.min_oldest_days = retention.optional<double>("min_oldest_days");
    spec.retention.max_gap_hours = retention.optional<double>("max_gap_hours");
  }
  return spec;
}

// "provider", "container", "existing" and "server_settings": where the server comes from and how it runs.
inline void parse_server(const json_reader& root, scenario& result) {
  result.provider = root.optional<std::string>("provider").value_or("local");
  auto names = provider_names();
  if (std::find(names.begin(), names.end(), result.provider) == names.end())
    root.fail("/provider", "'" + result.provider + "' is not one of: " + join(names));
  if (root.has("container")) {
    auto container = root.object("container", {"engine", "image", "host"});
    result.container_engine = container.optional<std::string>("engine").value_or("");
    result.container_image = container.optional<std::string>("image").value_or("");
    result.container_host = container.optional<std::string>("host").value_or("");
  }
  if (root.has("existing"))
    result.restore_as_given_role =
        root.object("existing", {"restore_as_given_role"}).optional<bool>("restore_as_given_role").value_or(false);
  if (!root.has("server_settings")) return;
  auto settings = root.object("server_settings", {});  // any PostgreSQL setting name
  for (const auto& item : settings.value().items()) {
    if (!item.value().is_string() && !item.value().is_number())
      settings.fail(settings.pointer_of(item.key()), "expected a string or a number");
    result.server_settings.emplace_back(item.key(), item.value().is_string() ? item.value().get<std::string>()
                                                                            : item.value().dump());
  }
}

inline snapshot_schema parse_snapshot_schema(const json_reader& restore, const std::filesystem::path& base) {
  snapshot_schema schema;
  if (!restore.has("schema")) return schema;
  auto source = restore.object("schema", {"dump", "migrations", "sql"});
  if (auto dump = source.optional<std::string>("dump")) schema.dump = resolve_path(base, *dump);
  if (auto migrations = source.optional<std::string>("migrations")) schema.migrations = resolve_path(base, *migrations);
  schema.sql = source.optional<std::string>("sql").value_or("");
  if (!schema.dump.empty() + !schema.migrations.empty() + !schema.sql.empty() != 1)
    source.fail(source.pointer(), "give exactly one of 'dump', 'migrations' or 'sql'");
  return schema;
}

inline restore_spec parse_restore(const json_reader& root, const std::filesystem::path& base) {
  restore_spec spec;
  if (!root.has("restore")) return spec;
  auto restore = root.object("restore", {"jobs", "timeout_seconds", "no_owner", "no_privileges", "single_transaction",
                                         "roles", "extensions", "sql_before", "sql_after", "max_seconds", "database", "schema"});
  spec.jobs = restore.optional<int>("jobs").value_or(0);
  if (spec.jobs < 0 || spec.jobs > max_restore_jobs)
    restore.fail(restore.pointer_of("jobs"), "must be 0 (all cores) to " + std::to_string(max_restore_jobs));
  auto timeout = restore.optional<long long>("timeout_seconds").value_or(0);
  if (timeout < 0 || timeout > max_timeout_seconds)
    restore.fail(restore.pointer_of("timeout_seconds"), "must be 0 (no limit) to " + std::to_string(max_timeout_seconds) + " (a year)");
  spec.timeout = std::chrono::seconds(timeout);
  spec.no_owner = restore.optional<bool>("no_owner").value_or(true);
  spec.no_privileges = restore.optional<bool>("no_privileges").value_or(true);
  spec.single_transaction = restore.optional<bool>("single_transaction").value_or(false);
  spec.roles = restore.strings("roles");
  spec.extensions = restore.strings("extensions");
  spec.sql_before = restore.optional<std::string>("sql_before").value_or("");
  spec.sql_after = restore.optional<std::string>("sql_after").value_or("");
  spec.max_seconds = restore.optional<double>("max_seconds");
  spec.database = restore.optional<std::string>("database").value_or("");
  spec.schema = parse_snapshot_schema(restore, base);
  return spec;
}

inline void parse_reports(const json_reader& root, const std::filesystem::path& base, scenario& result) {
  if (!root.has("reports")) return;
  auto reports = root.object("reports", {"junit", "json", "history", "summary_md", "metrics"});
  if (auto junit = reports.optional<std::string>("junit")) result.junit = resolve_path(base, *junit);
  if (auto json = reports.optional<std::string>("json")) result.json_report = resolve_path(base, *json);
  if (auto history = reports.optional<std::string>("history")) result.history = resolve_path(base, *history);
  if (auto summary = reports.optional<std::string>("summary_md")) result.summary_md = resolve_path(base, *summary);
  if (auto metrics = reports.optional<std::string>("metrics")) result.metrics = resolve_path(base, *metrics);
}

}  // namespace detail

/// Parse a scenario document. `source` names it in errors; relative paths resolve against `base`.
inline scenario parse_scenario(const nlohmann::json& document, const std::filesystem::path& base,
                               const std::string& source) {
  detail::json_reader root(document, "", source,
                           {"$schema", "name", "description", "backup", "hygiene", "provider", "container", "existing",
                            "server_settings", "restore", "assertions", "reports"});
  scenario result;
  root.optional<std::string>("$schema");  // editors' schema reference; allowed, not used
  result.name = root.required<std::string>("name");
  if (result.name.empty() || result.name.find_first_of("/\\ \t\n") != std::string::npos)
    root.fail("/name", "must be non-empty, without spaces or slashes (it names report files)");
  result.description = root.optional<std::string>("description").value_or("");
  result.backup = detail::parse_backup_source(root, base);
  result.hygiene = detail::parse_hygiene(root, result.backup);
  detail::parse_server(root, result);
  result.restore = detail::parse_restore(root, base);
  const auto& assertions = root.raw("assertions");
  if (!assertions.is_array() || assertions.empty())
    root.fail("/assertions", "needs a non-empty array: a drill that asserts nothing proves nothing");
  for (std::size_t index = 0; index < assertions.size(); ++index) {
    result.assertions.push_back(parse_assertion(assertions[index], "/assertions/" + std::to_string(index), source));
    if (auto* schema = std::get_if<schema_assertion>(&result.assertions.back()); schema && !schema->from_manifest) {
      schema->reference = detail::resolve_path(base, schema->reference).string();
      if (!std::filesystem::is_regular_file(schema->reference))
        root.fail("/assertions/" + std::to_string(index) + "/reference", "no such file: " + schema->reference);
    }
  }
  detail::parse_reports(root, base, result);
  return result;
}

/// Read and parse a scenario file; a missing file or bad JSON is a usage_error.
inline scenario load_scenario(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw usage_error("cannot read scenario " + file.string() + ": " + std::strerror(errno));
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& failure) {
    throw usage_error(file.string() + ": not valid JSON: " + failure.what());
  }
  auto absolute = std::filesystem::absolute(file).lexically_normal();
  scenario result = parse_scenario(document, absolute.parent_path(), file.string());
  result.file = absolute;
  return result;
}

}  // namespace pgdrill
