// A drill scenario: which backup, which server, how to restore, what to assert. Parsed strictly.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>  // optional bounds and report paths
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/detail/json_reader.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/hygiene.hpp>
#include <pgdrill/local.hpp>

namespace pgdrill {

/// Where the backup comes from: one file, the newest file in a directory matching a glob, or
/// a set of files restored in order (e.g. one plain dump per table).
struct backup_source {
  std::filesystem::path file;       ///< one file (or a directory-format archive)
  std::filesystem::path directory;  ///< or: the newest match in this directory
  std::string pattern = "*";
  std::vector<std::filesystem::path> files;  ///< or: a backup set, restored in this order
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
};

/// `row_count`: the table's row count, exactly, within bounds, or as the manifest recorded.
struct row_count_assertion {
  std::string name;   ///< explicit result name; default "row_count <schema.table>"
  std::string table;  ///< "schema.table" or "table" (public); empty with the manifest: every table
  std::optional<long long> equals, min, max;
  bool from_manifest = false;       ///< "expect": "manifest"
  std::vector<std::string> except;  ///< manifest tables not to check
};

/// `tables_present`: tables that must exist (and optionally hold rows); with the manifest,
/// every table it lists.
struct tables_present_assertion {
  std::string name;
  std::vector<std::string> tables;
  bool non_empty = false;
  bool from_manifest = false;
  std::vector<std::string> except;
};

/// `checksum`: a table's content checksum equals a literal or the manifest's value.
struct checksum_assertion {
  std::string name;
  std::string table;  ///< empty with the manifest: every table
  std::vector<std::string> columns;  ///< only these columns (default: all, in attribute order)
  std::string equals;                ///< 32 hex digits
  bool from_manifest = false;
  std::vector<std::string> except;
};

/// `sql`: a query's single value compared with an expected value, or a query that must return
/// no rows (an invariant). Runs read-only with a statement timeout.
struct sql_assertion {
  std::string name;
  std::string query;
  std::string op = "=";         ///< =, !=, <, <=, >, >=
  nlohmann::json expected;      ///< number, string, boolean or null
  bool expect_no_rows = false;
  double timeout_seconds = 60;
};

/// `sequences`: every sequence owned by or defaulted into a column is at or past its maximum.
struct sequences_assertion {
  std::string name;
};

/// `extensions_present`: these extensions are installed in the restored database.
struct extensions_present_assertion {
  std::string name;
  std::vector<std::string> extensions;
};

/// `freshness`: the newest value of a timestamp column is within max_age_hours of the backup's
/// own time (the manifest's, else the backup file's).
struct freshness_assertion {
  std::string name;
  std::string table;
  std::string column;
  double max_age_hours = 24;
};

using assertion = std::variant<row_count_assertion, tables_present_assertion, checksum_assertion, sql_assertion,
                               sequences_assertion, extensions_present_assertion, freshness_assertion>;

/// A parsed scenario. Paths are absolute, resolved against the scenario file's directory.
struct scenario {
  std::string name;
  std::string description;
  std::filesystem::path file;  ///< the scenario file itself (empty when built in code)
  backup_source backup;
  std::string provider = "local";  ///< local, container, existing, auto
  std::string container_engine;    ///< container provider: docker, podman (empty: detect)
  std::string container_image;     ///< container provider: image template, {major} replaced
  setting_list server_settings;  ///< over the restore-tuned defaults
  restore_spec restore;
  hygiene_spec hygiene;
  std::vector<assertion> assertions;
  std::optional<std::filesystem::path> junit;        ///< report path; the runner has a default
  std::optional<std::filesystem::path> json_report;  ///< JSON report path
  std::optional<std::filesystem::path> history;      ///< history file a line is appended to
};

namespace detail {

inline std::filesystem::path resolve_path(const std::filesystem::path& base, const std::string& text) {
  std::filesystem::path path(text);
  return (path.is_absolute() ? path : base / path).lexically_normal();
}

// "expect": "manifest" and "except": [...], shared by the kinds that can take the manifest.
template <class Assertion>
void read_manifest_keys(const json_reader& item, Assertion& check) {
  check.from_manifest = item.one_of("expect", {"manifest"}, "") == "manifest";
  check.except = item.strings("except");
  if (!check.except.empty() && !check.from_manifest)
    item.fail(item.pointer_of("except"), "'except' goes with \"expect\": \"manifest\"");
}

inline assertion parse_assertion(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
  if (!value.is_object()) json_reader(value, pointer, source, {});  // reports the wrong type
  static const std::initializer_list<const char*> kinds{"row_count", "tables_present", "checksum", "sql", "sequences",
                                                        "extensions_present", "freshness"};
  std::string type = json_reader(value, pointer, source, {}).one_of("type", kinds, "");
  if (type.empty()) json_reader(value, pointer, source, {}).fail(pointer + "/type", "missing required key");

  if (type == "row_count") {
    json_reader item(value, pointer, source, {"type", "name", "table", "equals", "min", "max", "expect", "except"});
    row_count_assertion check;
    check.name = item.optional<std::string>("name").value_or("");
    check.table = item.optional<std::string>("table").value_or("");
    check.equals = item.optional<long long>("equals");
    check.min = item.optional<long long>("min");
    check.max = item.optional<long long>("max");
    read_manifest_keys(item, check);
    if (check.table.empty() && !check.from_manifest) item.fail(item.pointer_of("table"), "missing required key");
    if (check.from_manifest && (check.equals || check.min || check.max))
      item.fail(item.pointer(), "\"expect\": \"manifest\" takes the count from the manifest: no equals/min/max");
    if (!check.from_manifest && !check.equals && !check.min && !check.max)
      item.fail(item.pointer(), "row_count needs at least one of: equals, min, max (or \"expect\": \"manifest\")");
    if (check.equals && (check.min || check.max))
      item.fail(item.pointer(), "row_count takes either equals or min/max, not both");
    if (check.min && check.max && *check.min > *check.max) item.fail(item.pointer(), "min is greater than max");
    return check;
  }
  if (type == "tables_present") {
    json_reader item(value, pointer, source, {"type", "name", "tables", "non_empty", "expect", "except"});
    tables_present_assertion check;
    check.name = item.optional<std::string>("name").value_or("");
    check.tables = item.strings("tables");
    check.non_empty = item.optional<bool>("non_empty").value_or(false);
    read_manifest_keys(item, check);
    if (check.tables.empty() && !check.from_manifest)
      item.fail(item.pointer_of("tables"), "needs a non-empty list of tables (or \"expect\": \"manifest\")");
    return check;
  }
  if (type == "checksum") {
    json_reader item(value, pointer, source, {"type", "name", "table", "columns", "equals", "expect", "except"});
    checksum_assertion check;
    check.name = item.optional<std::string>("name").value_or("");
    check.table = item.optional<std::string>("table").value_or("");
    check.columns = item.strings("columns");
    check.equals = item.optional<std::string>("equals").value_or("");
    read_manifest_keys(item, check);
    if (check.from_manifest == !check.equals.empty())
      item.fail(item.pointer(), "checksum needs exactly one of: equals, \"expect\": \"manifest\"");
    if (check.table.empty() && !check.from_manifest) item.fail(item.pointer_of("table"), "missing required key");
    if (!check.equals.empty() && (check.equals.size() != 32 || check.equals.find_first_not_of("0123456789abcdef") != std::string::npos))
      item.fail(item.pointer_of("equals"), "a checksum is 32 lowercase hex digits");
    if (!check.columns.empty() && check.from_manifest)
      item.fail(item.pointer_of("columns"), "the manifest's checksums cover its recorded columns; drop 'columns'");
    return check;
  }
  if (type == "sql") {
    json_reader item(value, pointer, source, {"type", "name", "query", "op", "expected", "expect_no_rows", "timeout_seconds"});
    sql_assertion check;
    check.name = item.optional<std::string>("name").value_or("");
    check.query = item.required<std::string>("query");
    check.expect_no_rows = item.optional<bool>("expect_no_rows").value_or(false);
    check.op = item.one_of("op", {"=", "!=", "<", "<=", ">", ">="}, "=");
    check.timeout_seconds = item.optional<double>("timeout_seconds").value_or(60);
    if (check.expect_no_rows == item.has("expected"))
      item.fail(item.pointer(), "sql needs exactly one of: expected, \"expect_no_rows\": true");
    if (item.has("expected")) {
      check.expected = item.raw("expected");
      if (check.expected.is_array() || check.expected.is_object())
        item.fail(item.pointer_of("expected"), "expected a number, string, boolean or null");
    }
    return check;
  }
  if (type == "sequences") {
    json_reader item(value, pointer, source, {"type", "name"});
    return sequences_assertion{item.optional<std::string>("name").value_or("")};
  }
  if (type == "extensions_present") {
    json_reader item(value, pointer, source, {"type", "name", "extensions"});
    extensions_present_assertion check{item.optional<std::string>("name").value_or(""), item.strings("extensions")};
    if (check.extensions.empty()) item.fail(item.pointer_of("extensions"), "needs a non-empty list of extensions");
    return check;
  }
  json_reader item(value, pointer, source, {"type", "name", "table", "column", "max_age_hours"});
  return freshness_assertion{item.optional<std::string>("name").value_or(""), item.required<std::string>("table"),
                             item.required<std::string>("column"), item.required<double>("max_age_hours")};
}

}  // namespace detail

/// Parse a scenario document. `source` names it in errors; relative paths resolve against `base`.
inline scenario parse_scenario(const nlohmann::json& document, const std::filesystem::path& base,
                               const std::string& source) {
  detail::json_reader root(document, "", source,
                          {"$schema", "name", "description", "backup", "hygiene", "provider", "container",
                           "server_settings", "restore", "assertions", "reports"});
  scenario result;
  root.optional<std::string>("$schema");  // editors' schema reference; allowed, not used
  result.name = root.required<std::string>("name");
  if (result.name.empty() || result.name.find_first_of("/\\ \t\n") != std::string::npos)
    root.fail("/name", "must be non-empty, without spaces or slashes (it names report files)");
  result.description = root.optional<std::string>("description").value_or("");

  auto backup = root.object("backup", {"file", "directory", "pattern", "files"});
  if (auto file = backup.optional<std::string>("file")) result.backup.file = detail::resolve_path(base, *file);
  if (auto dir = backup.optional<std::string>("directory")) result.backup.directory = detail::resolve_path(base, *dir);
  result.backup.pattern = backup.optional<std::string>("pattern").value_or("*");
  for (const auto& file : backup.strings("files")) result.backup.files.push_back(detail::resolve_path(base, file));
  if (backup.has("files") && result.backup.files.empty()) backup.fail(backup.pointer_of("files"), "needs at least one file");
  if (!result.backup.file.empty() + !result.backup.directory.empty() + !result.backup.files.empty() != 1)
    backup.fail(backup.pointer(), "give exactly one of 'file', 'directory' or 'files'");
  if (result.backup.directory.empty() && backup.has("pattern"))
    backup.fail(backup.pointer_of("pattern"), "'pattern' goes with 'directory'");

  if (root.has("hygiene")) {
    auto hygiene = root.object("hygiene", {"min_size_bytes", "max_age_hours", "private_mode", "sha256_sidecar", "retention"});
    if (auto size = hygiene.optional<long long>("min_size_bytes")) {
      if (*size < 0) hygiene.fail(hygiene.pointer_of("min_size_bytes"), "must be 0 or more");
      result.hygiene.min_size_bytes = static_cast<std::uintmax_t>(*size);
    }
    result.hygiene.max_age_hours = hygiene.optional<double>("max_age_hours");
    result.hygiene.private_mode = hygiene.optional<bool>("private_mode").value_or(false);
    result.hygiene.sha256_sidecar = hygiene.one_of("sha256_sidecar", {"if_present", "required", "ignore"}, "if_present");
    if (hygiene.has("retention")) {
      auto retention = hygiene.object("retention", {"min_count", "min_oldest_days", "max_gap_hours"});
      if (result.backup.directory.empty())
        retention.fail(retention.pointer(), "retention checks need 'backup.directory'");
      result.hygiene.retention.min_count = retention.optional<int>("min_count");
      result.hygiene.retention.min_oldest_days = retention.optional<double>("min_oldest_days");
      result.hygiene.retention.max_gap_hours = retention.optional<double>("max_gap_hours");
    }
  }

  result.provider = root.one_of("provider", {"local", "container", "existing", "auto"}, "local");
  if (root.has("container")) {
    auto container = root.object("container", {"engine", "image"});
    result.container_engine = container.optional<std::string>("engine").value_or("");
    result.container_image = container.optional<std::string>("image").value_or("");
  }
  if (root.has("server_settings")) {
    auto settings = root.object("server_settings", {});  // any PostgreSQL setting name
    for (const auto& item : settings.value().items()) {
      if (!item.value().is_string() && !item.value().is_number())
        settings.fail(settings.pointer_of(item.key()), "expected a string or a number");
      result.server_settings.emplace_back(item.key(), item.value().is_string() ? item.value().get<std::string>()
                                                                              : item.value().dump());
    }
  }

  if (root.has("restore")) {
    auto restore = root.object("restore", {"jobs", "timeout_seconds", "no_owner", "no_privileges", "single_transaction",
                                           "roles", "extensions", "sql_before", "sql_after", "max_seconds"});
    result.restore.jobs = restore.optional<int>("jobs").value_or(0);
    if (result.restore.jobs < 0) restore.fail(restore.pointer_of("jobs"), "must be 0 (all cores) or more");
    result.restore.timeout = std::chrono::seconds(restore.optional<long long>("timeout_seconds").value_or(0));
    result.restore.no_owner = restore.optional<bool>("no_owner").value_or(true);
    result.restore.no_privileges = restore.optional<bool>("no_privileges").value_or(true);
    result.restore.single_transaction = restore.optional<bool>("single_transaction").value_or(false);
    result.restore.roles = restore.strings("roles");
    result.restore.extensions = restore.strings("extensions");
    result.restore.sql_before = restore.optional<std::string>("sql_before").value_or("");
    result.restore.sql_after = restore.optional<std::string>("sql_after").value_or("");
    result.restore.max_seconds = restore.optional<double>("max_seconds");
  }

  const auto& assertions = root.raw("assertions");
  if (!assertions.is_array() || assertions.empty())
    root.fail("/assertions", "needs a non-empty array: a drill that asserts nothing proves nothing");
  for (std::size_t index = 0; index < assertions.size(); ++index)
    result.assertions.push_back(detail::parse_assertion(assertions[index], "/assertions/" + std::to_string(index), source));

  if (root.has("reports")) {
    auto reports = root.object("reports", {"junit", "json", "history"});
    if (auto junit = reports.optional<std::string>("junit")) result.junit = detail::resolve_path(base, *junit);
    if (auto json = reports.optional<std::string>("json")) result.json_report = detail::resolve_path(base, *json);
    if (auto history = reports.optional<std::string>("history")) result.history = detail::resolve_path(base, *history);
  }
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
