// Manifests: every table's row count and checksum, taken in the same snapshot as the dump.
#pragma once

#include <chrono>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>  // optional snapshot
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/backup.hpp>
#include <pgdrill/binaries.hpp>
#include <pgdrill/checksum.hpp>
#include <pgdrill/detail/json_reader.hpp>
#include <pgdrill/hygiene.hpp>
#include <pgdrill/objects.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/schema.hpp>
#include <pgdrill/snapshot.hpp>

namespace pgdrill {

/// Written: 2 (tables that could not be read carry an "error"). Read: 1 and 2.
constexpr int manifest_format = 2;

/// What a source database held at the moment of a backup.
struct manifest {
  std::string created_at;      ///< ISO 8601 UTC
  std::string server_version;  ///< e.g. "15.18"
  std::string database;
  std::string snapshot;        ///< the exported snapshot the counts and the dump share
  std::string dump_command;    ///< pg_dump argv (no secrets: connection details travel in PG* env)
  std::string dump_version;
  std::string backup_file;     ///< file name, beside the manifest
  std::string backup_sha256;   ///< empty for directory archives
  std::uintmax_t backup_size = 0;
  std::vector<table_checksum> tables;
  bool objects_recorded = false;  ///< the three below were recorded (format 2)
  large_objects_state large_objects;
  std::vector<sequence_state> sequences;       ///< read before pg_dump starts (sequences are not transactional)
  std::vector<matview_state> materialized_views;
  std::map<std::string, long long> schema_objects;  ///< objects per kind (read_schema_objects)
  std::optional<std::vector<collation_state>> collations;  ///< absent in manifests of an older pgdrill
  std::optional<std::vector<std::string>> schema;  ///< the schema reference (schema.hpp); absent in older manifests
  bool from_snapshot = false;  ///< a JSON snapshot's own manifest: row counts and columns only

  /// "name: why" for each table or object that could not be read when the manifest was taken.
  std::vector<std::string> unreadable() const {
    std::vector<std::string> problems;
    for (const auto& entry : tables)
      if (!entry.error.empty()) problems.push_back(entry.table + ": " + entry.error);
    for (const char* kind : {"large_objects", "sequences", "materialized_views"})
      if (auto text = unreadable_of(kind); !text.empty()) problems.push_back(text);
    return problems;
  }

  /// What of one kind ("large_objects", "sequences", "materialized_views") could not be read.
  std::string unreadable_of(const std::string& kind) const {
    std::string text;
    auto add = [&](const std::string& name, const std::string& error) {
      if (!error.empty()) text += (text.empty() ? "" : "; ") + name + ": " + error;
    };
    if (kind == "large_objects") add("large objects", large_objects.error);
    if (kind == "sequences")
      for (const auto& entry : sequences) add(entry.sequence, entry.error);
    if (kind == "materialized_views")
      for (const auto& entry : materialized_views) add(entry.view, entry.error);
    return text;
  }

  const table_checksum* find(const std::string& table) const {
    auto name = detail::qualified_table(table);
    for (const auto& entry : tables)
      if (entry.table == name) return &entry;
    return nullptr;
  }

  nlohmann::json to_json() const {
    nlohmann::json tables_json = nlohmann::json::object();
    for (const auto& entry : tables)
      tables_json[entry.table] = entry.error.empty()
                                     ? nlohmann::json{{"rows", entry.rows}, {"checksum", entry.digest}, {"columns", entry.columns}}
                                     : nlohmann::json{{"error", entry.error}};
    nlohmann::json document = {{"pgdrill_manifest", manifest_format},
                               {"created_at", created_at},
                               {"server_version", server_version},
                               {"database", database},
                               {"snapshot", snapshot},
                               {"checksum", {{"algorithm", "xxh3-128-sum"}, {"version", checksum_version}}},
                               {"tables", tables_json}};
    auto or_error = [](const std::string& error, nlohmann::json value) { return error.empty() ? value : nlohmann::json{{"error", error}}; };
    document["large_objects"] = or_error(large_objects.error, {{"count", large_objects.count}, {"checksum", large_objects.digest}});
    document["sequences"] = nlohmann::json::object();
    for (const auto& sequence : sequences)
      document["sequences"][sequence.sequence] = or_error(
          sequence.error, {{"last_value", sequence.last_value}, {"is_called", sequence.is_called}, {"increment", sequence.increment}});
    document["materialized_views"] = nlohmann::json::object();
    for (const auto& view : materialized_views)
      document["materialized_views"][view.view] = or_error(view.error, {{"populated", view.populated}, {"rows", view.rows}});
    document["schema_objects"] = schema_objects;
    if (collations) {
      document["collations"] = nlohmann::json::object();
      for (const auto& collation : *collations)
        document["collations"][collation.collation] = {{"locale", collation.locale}, {"version", collation.version}};
    }
    if (schema) document[schema_reference_key] = *schema;
    if (!backup_file.empty())
      document["backup"] = {{"file", backup_file}, {"sha256", backup_sha256}, {"size_bytes", backup_size},
                            {"pg_dump_command", dump_command}, {"pg_dump_version", dump_version}};
    return document;
  }

  // Large objects, sequences and materialized views (format 2).
  static void read_objects(const detail::json_reader& root, const std::string& source, manifest& result) {
    result.objects_recorded = true;
    auto objects = root.object("large_objects", {"count", "checksum", "error"});
    result.large_objects.error = objects.optional<std::string>("error").value_or("");
    if (result.large_objects.error.empty())
      result.large_objects = {objects.required<long long>("count"), objects.required<std::string>("checksum"), ""};
    auto sequences = root.object("sequences", {});
    for (const auto& item : sequences.value().items()) {
      detail::json_reader entry(item.value(), sequences.pointer_of(item.key()), source, {"last_value", "is_called", "increment", "error"});
      if (entry.has("error")) result.sequences.push_back({item.key(), 0, false, 1, entry.required<std::string>("error")});
      else result.sequences.push_back({item.key(), entry.required<long long>("last_value"), entry.required<bool>("is_called"),
                                       entry.required<long long>("increment"), ""});
    }
    auto objects_by_kind = root.object("schema_objects", {});
    for (const auto& item : objects_by_kind.value().items()) result.schema_objects[item.key()] = objects_by_kind.required<long long>(item.key());
    auto views = root.object("materialized_views", {});
    for (const auto& item : views.value().items()) {
      detail::json_reader entry(item.value(), views.pointer_of(item.key()), source, {"populated", "rows", "error"});
      if (entry.has("error")) result.materialized_views.push_back({item.key(), false, 0, entry.required<std::string>("error")});
      else result.materialized_views.push_back({item.key(), entry.required<bool>("populated"), entry.required<long long>("rows"), ""});
    }
    if (root.has(schema_reference_key)) result.schema = root.strings(schema_reference_key);
    if (root.has("collations")) {
      auto collations = root.object("collations", {});
      auto& recorded = result.collations.emplace();
      for (const auto& item : collations.value().items()) {
        detail::json_reader entry(item.value(), collations.pointer_of(item.key()), source, {"locale", "version"});
        recorded.push_back({item.key(), entry.required<std::string>("locale"), entry.required<std::string>("version")});
      }
    }
  }

  static manifest from_json(const nlohmann::json& document, const std::string& source) {
    detail::json_reader root(document, "", source,
                             {"pgdrill_manifest", "created_at", "server_version", "database", "snapshot", "checksum",
                              "tables", "backup", "large_objects", "sequences", "materialized_views", "schema_objects", "collations", "schema",
                              schema_reference_key});
    int format = root.required<int>("pgdrill_manifest");
    if (format < 1 || format > manifest_format)
      root.fail("/pgdrill_manifest", "unsupported manifest format (this pgdrill reads 1 to " + std::to_string(manifest_format) + ")");
    manifest result;
    result.created_at = root.required<std::string>("created_at");
    result.server_version = root.optional<std::string>("server_version").value_or("");
    result.database = root.optional<std::string>("database").value_or("");
    result.snapshot = root.optional<std::string>("snapshot").value_or("");
    auto checksum = root.object("checksum", {"algorithm", "version"});
    int version = checksum.required<int>("version");
    if (checksum.required<std::string>("algorithm") != "xxh3-128-sum" || version < 1 || version > checksum_version)
      checksum.fail(checksum.pointer(), "unsupported checksum definition");
    if (root.has("backup")) {
      auto backup = root.object("backup", {"file", "sha256", "size_bytes", "pg_dump_command", "pg_dump_version"});
      result.backup_file = backup.optional<std::string>("file").value_or("");
      result.backup_sha256 = backup.optional<std::string>("sha256").value_or("");
      result.backup_size = static_cast<std::uintmax_t>(backup.optional<long long>("size_bytes").value_or(0));
      result.dump_command = backup.optional<std::string>("pg_dump_command").value_or("");
      result.dump_version = backup.optional<std::string>("pg_dump_version").value_or("");
    }
    if (root.has("large_objects")) read_objects(root, source, result);
    auto tables = root.object("tables", {});
    for (const auto& item : tables.value().items()) {
      detail::json_reader entry(item.value(), tables.pointer_of(item.key()), source, {"rows", "checksum", "columns", "error"});
      table_checksum table{item.key(), entry.strings("columns"), 0, "", entry.optional<std::string>("error").value_or("")};
      if (table.error.empty()) {
        table.rows = entry.required<long long>("rows");
        table.digest = entry.required<std::string>("checksum");
      }
      result.tables.push_back(std::move(table));
    }
    return result;
  }
};

/// Where a backup's manifest lives: beside it, `FILE.manifest.json`.
inline std::filesystem::path manifest_path_for(const std::filesystem::path& backup) {
  return backup.string() + ".manifest.json";
}

/// Read a manifest; could_not_verify when missing, usage_error when malformed.
inline manifest load_manifest(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw could_not_verify("no manifest " + file.string());
  try {
    return manifest::from_json(nlohmann::json::parse(in), file.string());
  } catch (const nlohmann::json::parse_error& failure) {
    throw usage_error(file.string() + ": not valid JSON: " + failure.what());
  }
}

namespace detail {

// Readable by its owner only: a file 0600, a directory archive 0700 with its files 0600.
inline void make_private(const std::filesystem::path& path) {
  using std::filesystem::perms;
  auto mode = [](const std::filesystem::path& item) {
    return std::filesystem::is_directory(item) ? perms::owner_all : perms::owner_read | perms::owner_write;
  };
  std::filesystem::permissions(path, mode(path));
  if (std::filesystem::is_directory(path))
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) std::filesystem::permissions(entry, mode(entry));
}

// The hidden name a file is written under before it is renamed into place (list_backups and
// drills never take names starting with a dot).
inline std::filesystem::path partial_name(const std::filesystem::path& file) {
  return file.parent_path() / ("." + file.filename().string() + ".partial");
}

// Write `text` to `file` whole or not at all, mode 0600.
inline void write_private(const std::filesystem::path& file, const std::string& text) {
  auto partial = partial_name(file);
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw could_not_verify("cannot write " + file.string());
  }
  make_private(partial);
  std::filesystem::rename(partial, file);
}

}  // namespace detail

/// Write a manifest whole or not at all, mode 0600.
inline void save_manifest(const manifest& data, const std::filesystem::path& file) {
  detail::write_private(file, data.to_json().dump(2) + "\n");
}

namespace detail {

// User tables (partitions included, partitioned parents and extension-owned tables not).
inline std::vector<std::string> user_tables(checksum_connection& connection) {
  auto result = connection.execute(R"(
    SELECT n.nspname, c.relname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2)");
  std::vector<std::string> tables;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    tables.push_back(table_name(PQgetvalue(result.get(), row, 0), PQgetvalue(result.get(), row, 1)));
  return tables;
}

inline std::string single_value(checksum_connection& connection, const std::string& sql) {
  auto result = connection.execute(sql);
  return PQntuples(result.get()) > 0 ? PQgetvalue(result.get(), 0, 0) : "";
}

}  // namespace detail

/// A source database held open in one exported snapshot: the manifest's tables and, with
/// dump_with_manifest, pg_dump read exactly the same data, whatever other sessions write.
class snapshot_session {
 public:
  explicit snapshot_session(const endpoint& source) : connection_(source) {
    connection_.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    snapshot_ = detail::single_value(connection_, "SELECT pg_export_snapshot()");
    server_version_ = detail::first_word(detail::single_value(connection_, "SHOW server_version"));
    database_ = detail::single_value(connection_, "SELECT current_database()");
    tables_ = detail::user_tables(connection_);
    sequences_ = read_sequences(connection_);  // before pg_dump reads them: it can only see them further on
  }
  const std::string& snapshot() const { return snapshot_; }
  const std::string& server_version() const { return server_version_; }
  const std::string& database() const { return database_; }
  const std::vector<std::string>& tables() const { return tables_; }
  const std::vector<sequence_state>& sequences() const { return sequences_; }

 private:
  checksum_connection connection_;
  std::string snapshot_, server_version_, database_;
  std::vector<std::string> tables_;
  std::vector<sequence_state> sequences_;
};

namespace detail {

// The schema reference as the snapshot `snapshot` sees the database.
inline std::vector<std::string> read_schema_in_snapshot(const endpoint& source, const std::string& snapshot) {
  pqxx::connection connection(source.conninfo());
  pqxx::nontransaction tx(connection);  // the block is ours: SET TRANSACTION SNAPSHOT must come first in it
  tx.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  tx.exec("SET TRANSACTION SNAPSHOT " + tx.quote(snapshot));
  auto lines = read_schema_reference(tx);
  tx.exec("COMMIT");
  return lines;
}

}  // namespace detail

/// The manifest of a live database, every table checksummed over `parallel` connections in
/// `session`'s snapshot.
inline manifest take_manifest(const endpoint& source, const snapshot_session& session, int parallel = 0) {
  manifest result;
  result.created_at = detail::iso8601_utc(std::time(nullptr));
  result.server_version = session.server_version();
  result.database = session.database();
  result.snapshot = session.snapshot();
  auto batch = checksum_tables(source, session.tables(), {}, parallel, session.snapshot());
  for (std::size_t index = 0; index < batch.sums.size(); ++index) batch.sums[index].error = batch.failure_text(index);
  result.tables = std::move(batch.sums);
  result.objects_recorded = true;
  result.sequences = session.sequences();
  checksum_connection objects(source);
  objects.use_snapshot(session.snapshot());
  result.materialized_views = read_matviews(objects);
  result.schema_objects = read_schema_objects(objects);
  result.collations = read_collations(objects);
  result.schema = detail::read_schema_in_snapshot(source, session.snapshot());
  try {  // last on this connection: a large object this role may not read aborts its transaction
    result.large_objects = read_large_objects(objects);
  } catch (const could_not_verify& failure) {
    result.large_objects.error = failure.what();
  }
  return result;
}

/// How `dump_with_manifest` runs pg_dump.
struct dump_options {
  std::filesystem::path out_dir;
  std::string format = "custom";          ///< custom, plain, directory, tar
  std::vector<std::string> pg_dump_args;  ///< passed through (e.g. -t, -Z 9, --no-owner)
  std::string name;                       ///< file name stem; default: the database name
  binary_search binaries = binary_search::from_environment();
  int parallel = 0;                       ///< checksum connections; 0: the number of cores
};

/// What `dump_with_manifest` wrote.
struct dump_result {
  std::filesystem::path backup;
  std::filesystem::path manifest_file;
  manifest data;
  double seconds = 0;
};

/// Take a backup with pg_dump and, in the very same snapshot, every table's row count and
/// checksum; write the backup, `BACKUP.manifest.json` and a `BACKUP.sha256` sidecar into out_dir.
inline dump_result dump_with_manifest(const endpoint& source, const dump_options& options) {
  auto started = std::chrono::steady_clock::now();
  snapshot_session session(source);
  auto tools = find_binaries(options.binaries, major_of(session.server_version()));

  const auto& format = format_named(options.format);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::tm parts{};
  ::gmtime_r(&now, &parts);
  std::strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &parts);
  std::filesystem::create_directories(options.out_dir);
  std::string stem = (options.name.empty() ? session.database() : options.name) + "_" + stamp;
  dump_result result;
  result.backup = options.out_dir / (stem + format.extension);
  result.manifest_file = manifest_path_for(result.backup);
  auto partial = detail::partial_name(result.backup);
  auto sidecar = std::filesystem::path(result.backup.string() + ".sha256");
  auto remove_all_written = [&] {
    std::error_code ignored;
    for (const auto& path : {partial, result.backup, result.manifest_file, sidecar}) std::filesystem::remove_all(path, ignored);
  };

  // Checksums run on their own connections while pg_dump reads the same snapshot; the thread is
  // joined however this ends.
  std::exception_ptr sums_failed;
  std::thread summing([&] {
    try {
      result.data = take_manifest(source, session, options.parallel);
    } catch (...) {
      sums_failed = std::current_exception();
    }
  });
  struct join_on_exit {
    std::thread& thread;
    ~join_on_exit() {
      if (thread.joinable()) thread.join();
    }
  } joined{summing};
  command dump(tools.tool("pg_dump"), {"--snapshot", session.snapshot(), "--format", format.pg_dump_flag,
                                       "--file", partial.string()});
  dump.args.insert(dump.args.end(), options.pg_dump_args.begin(), options.pg_dump_args.end());
  dump.args.push_back(session.database());
  source.apply_to(dump);
  auto dumped = run(dump);
  summing.join();
  if (sums_failed) std::rethrow_exception(sums_failed);
  if (!dumped.ok()) {
    remove_all_written();
    throw could_not_verify("pg_dump " + dumped.describe() + ":\n" + dumped.err_tail);
  }
  // The backup, its sidecar and its manifest appear together or not at all, the backup last.
  try {
    detail::make_private(partial);
    result.data.dump_command = dump.display();
    result.data.dump_version = tools.version;
    result.data.backup_file = result.backup.filename().string();
    result.data.backup_size = inspect_file(partial).size;
    if (std::filesystem::is_directory(partial)) {
      detail::write_private(sidecar, directory_sha256_lines(partial));  // relative paths: valid after the rename
    } else {
      result.data.backup_sha256 = sha256_file(partial);
      detail::write_private(sidecar, result.data.backup_sha256 + "  " + result.data.backup_file + "\n");
    }
    save_manifest(result.data, result.manifest_file);
    std::filesystem::rename(partial, result.backup);
  } catch (...) {
    remove_all_written();
    throw;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

/// The backup against what its manifest recorded of it: its size and SHA-256 (a manifest beside
/// another file, or a backup changed since it was written, fails naming both values; a file
/// renamed with its manifest passes). Nothing when the manifest recorded neither (written by an
/// older pgdrill, or a JSON snapshot's own).
inline bool records_its_backup(const manifest& recorded) {
  return !recorded.from_snapshot && (!recorded.backup_sha256.empty() || recorded.backup_size != 0);
}
constexpr const char* backup_as_recorded_check = "backup as in the manifest";

inline std::optional<step_result> backup_as_recorded(const backup_info& backup, const manifest& recorded) {
  if (!records_its_backup(recorded)) return std::nullopt;
  std::vector<std::string> differences;
  if (recorded.backup_size != 0 && recorded.backup_size != backup.size)
    differences.push_back("size " + std::to_string(backup.size) + " bytes, the manifest recorded " + std::to_string(recorded.backup_size));
  if (!recorded.backup_sha256.empty()) {
    auto actual = backup.sha256.empty() && std::filesystem::is_regular_file(backup.path) ? sha256_file(backup.path) : backup.sha256;
    if (actual != recorded.backup_sha256) differences.push_back("SHA-256 " + actual + ", the manifest recorded " + recorded.backup_sha256);
  }
  auto step = make_step(backup_as_recorded_check, "hygiene", differences.empty() ? outcome::passed : outcome::failed,
                        differences.empty() ? "size and SHA-256 as the manifest recorded them" : detail::join(differences, "; "));
  step.expected = "as recorded";
  step.actual = differences.empty() ? step.expected : std::to_string(differences.size()) + " differences";
  return step;
}

/// A JSON snapshot's own manifest as the manifest its drill checks against: each table's row
/// count and columns (a snapshot records no checksums or objects).
inline manifest manifest_of_snapshot(const snapshot_manifest& snapshot, const std::filesystem::path& file) {
  manifest result;
  result.from_snapshot = true;
  result.created_at = snapshot.created_at;
  result.database = snapshot.schema;
  result.backup_file = file.filename().string();
  for (const auto& table : snapshot.tables)
    result.tables.push_back({snapshot.qualified(table.name), table.columns, table.rows.value_or(0), "",
                             table.rows ? "" : "the snapshot's manifest gives no row count"});
  return result;
}

}  // namespace pgdrill
