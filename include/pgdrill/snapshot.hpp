// JSON table snapshots: one document per schema, {"manifest": {...}, "data": {"table": [rows]}},
// as application frameworks write them. Read as a stream (a SAX parser: one row in memory at a
// time) and loaded with COPY into a schema that already exists, the server converting the JSON
// values into the columns' types.
#pragma once

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <istream>
#include <map>
#include <memory>
#include <optional>  // optional manifest fields
#include <set>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/restore_errors.hpp>
#include <pgdrill/stream.hpp>

namespace pgdrill {

/// One table as a snapshot's manifest describes it.
struct snapshot_table {
  std::string name;                 ///< unqualified, in the manifest's schema
  std::optional<long long> rows;    ///< the manifest's row count
  std::vector<std::string> columns; ///< the manifest's column list (empty: it lists none)
};

/// A snapshot's manifest: what the snapshot says it holds.
struct snapshot_manifest {
  std::string format_version;
  std::string schema = "public";
  std::string created_at;  ///< as written (ISO 8601 in the frameworks seen)
  std::vector<snapshot_table> tables;
  std::vector<std::string> excluded;  ///< tables it says it left out
  std::optional<long long> total_rows;

  const snapshot_table* find(const std::string& table) const {
    for (const auto& entry : tables)
      if (entry.name == table) return &entry;
    return nullptr;
  }
  std::string qualified(const std::string& table) const { return detail::table_name(schema, table); }
};

namespace detail {

// The first of `keys` present in `object` (manifests spell fields in camelCase or snake_case).
inline const nlohmann::json* field(const nlohmann::json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (auto found = object.find(key); found != object.end() && !found->is_null()) return &*found;
  return nullptr;
}

inline std::string scalar_text(const nlohmann::json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

inline long long manifest_count(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number_integer() || value.get<long long>() < 0)
    throw corrupt_backup("the snapshot's manifest: " + where + " is not a row count: " + value.dump());
  return value.get<long long>();
}

inline snapshot_table manifest_table(const std::string& name, const nlohmann::json& entry) {
  snapshot_table table{name, std::nullopt, {}};
  if (entry.is_number_integer()) {  // {"users": 3}
    table.rows = manifest_count(entry, name);
    return table;
  }
  if (!entry.is_object()) throw corrupt_backup("the snapshot's manifest: table '" + name + "' is neither an object nor a count");
  if (auto* rows = field(entry, {"rowCount", "row_count", "rows", "count"})) table.rows = manifest_count(*rows, name + " row count");
  if (auto* columns = field(entry, {"columns"})) {
    if (!columns->is_array()) throw corrupt_backup("the snapshot's manifest: the columns of '" + name + "' are not a list");
    for (const auto& column : *columns) {
      auto* column_name = column.is_object() ? field(column, {"name", "column", "column_name"}) : &column;
      if (!column_name || !column_name->is_string())
        throw corrupt_backup("the snapshot's manifest: a column of '" + name + "' has no name: " + column.dump());
      table.columns.push_back(column_name->get<std::string>());
    }
  }
  return table;
}

}  // namespace detail

/// The manifest object of a snapshot, read leniently in its field names (see the README's
/// "JSON snapshots" for the accepted shape); corrupt_backup for anything else.
inline snapshot_manifest parse_snapshot_manifest(const nlohmann::json& document) {
  using detail::field;
  if (!document.is_object()) throw corrupt_backup("the snapshot's \"manifest\" is not a JSON object");
  snapshot_manifest result;
  if (auto* version = field(document, {"version", "formatVersion", "format_version"})) result.format_version = detail::scalar_text(*version);
  if (auto* schema = field(document, {"schema", "schemaName", "schema_name"})) {
    if (!schema->is_string() || schema->get<std::string>().empty()) throw corrupt_backup("the snapshot's manifest names no schema");
    result.schema = schema->get<std::string>();
  }
  if (auto* created = field(document, {"createdAt", "created_at", "timestamp", "takenAt", "taken_at"}))
    result.created_at = detail::scalar_text(*created);
  auto* tables = field(document, {"tables"});
  if (!tables) throw corrupt_backup("the snapshot's manifest lists no \"tables\"");
  if (tables->is_object()) {
    for (const auto& [name, entry] : tables->items()) result.tables.push_back(detail::manifest_table(name, entry));
  } else if (tables->is_array()) {
    for (const auto& entry : *tables) {
      auto* name = entry.is_object() ? field(entry, {"name", "table", "tableName", "table_name"}) : nullptr;
      if (!name || !name->is_string()) throw corrupt_backup("the snapshot's manifest: a table has no name: " + entry.dump());
      result.tables.push_back(detail::manifest_table(name->get<std::string>(), entry));
    }
  } else {
    throw corrupt_backup("the snapshot's manifest: \"tables\" is neither an object nor a list");
  }
  if (auto* total = field(document, {"totalRows", "total_rows", "rowCount", "row_count"}))
    result.total_rows = detail::manifest_count(*total, "totalRows");
  if (auto* excluded = field(document, {"excludedTables", "excluded_tables", "excluded"}); excluded && excluded->is_array())
    for (const auto& name : *excluded)
      if (name.is_string()) result.excluded.push_back(name.get<std::string>());
  return result;
}

/// Called as a snapshot streams by: each table of "data" as it begins and ends, each row as the
/// text of one JSON object (numbers exactly as written) with its top-level keys.
struct snapshot_events {
  std::function<void(const std::string& table)> table_begins;
  std::function<void(const std::string& table, const std::string& row_json, const std::vector<std::string>& keys)> row;
  std::function<void(const std::string& table, long long rows)> table_ends;
};

namespace detail {

// Appends a JSON string literal of `text` (already valid UTF-8: the parser checked it).
inline void append_json_string(std::string& out, const std::string& text) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += {'\\', c};
    else if (byte < 0x20) out += std::string("\\u00") + hex[byte >> 4] + hex[byte & 15];
    else out += c;
  }
  out += '"';
}

// Builds a small JSON value (the manifest) from SAX events.
class json_builder {
 public:
  bool building() const { return !open_.empty(); }
  void key(const std::string& name) { key_ = name; }
  void start(nlohmann::json container) { place(std::move(container), true); }
  void value(nlohmann::json scalar) { place(std::move(scalar), false); }
  bool end() {  // true when the outermost value is complete
    open_.pop_back();
    return open_.empty();
  }
  nlohmann::json take() { return std::move(root_); }

 private:
  void place(nlohmann::json item, bool container) {
    nlohmann::json* slot = &root_;
    if (open_.empty()) root_ = std::move(item);
    else if (open_.back()->is_array()) slot = &(open_.back()->emplace_back(std::move(item)));
    else slot = &((*open_.back())[key_] = std::move(item));
    if (container) open_.push_back(slot);
  }
  nlohmann::json root_;
  std::vector<nlohmann::json*> open_;
  std::string key_;
};

// Writes one row's JSON text from SAX events, keeping numbers as they were written.
class row_writer {
 public:
  void begin() {
    text_.clear();
    keys_.clear();
    first_.assign(1, true);
    text_ += '{';
  }
  void key(const std::string& name) {
    if (first_.size() == 1) keys_.push_back(name);
    separate();
    append_json_string(text_, name);
    text_ += ':';
    after_key_ = true;
  }
  void scalar(const std::string& json_text) {
    separate();
    text_ += json_text;
  }
  void open(char bracket) {
    separate();
    text_ += bracket;
    first_.push_back(true);
  }
  bool close(char bracket) {  // true when the row itself is closed
    text_ += bracket;
    first_.pop_back();
    return first_.empty();
  }
  const std::string& text() const { return text_; }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.back()) text_ += ',';
    first_.back() = false;
  }
  std::string text_;
  std::vector<std::string> keys_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// The SAX handler: tracks where in {"manifest": ..., "data": {"t": [rows]}} each event falls.
class snapshot_sax {
 public:
  using json = nlohmann::json;
  snapshot_sax(const snapshot_events& events, bool manifest_only) : events_(events), manifest_only_(manifest_only) {}

  bool null() { return scalar(nullptr, "null"); }
  bool boolean(bool value) { return scalar(value, value ? "true" : "false"); }
  bool number_integer(json::number_integer_t value) { return scalar(value, std::to_string(value)); }
  bool number_unsigned(json::number_unsigned_t value) { return scalar(value, std::to_string(value)); }
  bool number_float(json::number_float_t value, const std::string& text) { return scalar(value, text); }
  bool string(std::string& value) {
    std::string text;
    if (in_row()) append_json_string(text, value);
    return scalar(value, text);
  }
  bool binary(json::binary_t&) { return fail("binary values are not JSON"); }
  bool key(std::string& name) {
    if (depth_ == 1) return section(name);
    if (section_ == "manifest") manifest_builder_.key(name);
    else if (section_ == "data" && depth_ == 2) table_ = name;
    else if (in_row()) row_.key(name);
    return true;
  }
  bool start_object(std::size_t) { return open('{'); }
  bool start_array(std::size_t) { return open('['); }
  bool end_object() { return close('}'); }
  bool end_array() { return close(']'); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& failure) {
    std::string what = failure.what();
    auto detail = what.find("] ");
    return fail("malformed JSON at byte " + std::to_string(position) + ": " + (detail == std::string::npos ? what : what.substr(detail + 2)));
  }

  std::string problem;  ///< why parsing stopped, when it did not end well
  bool stopped_early = false;
  std::optional<json> manifest;
  bool saw_data = false;

 private:
  bool in_row() const { return section_ == "data" && depth_ >= 4; }
  bool fail(const std::string& why) {
    problem = why + (section_ == "data" && !table_.empty() ? " (in table " + table_ + ")" : "");
    return false;
  }
  bool section(const std::string& name) {
    if ((name == "manifest" && manifest) || (name == "data" && saw_data)) return fail("the key \"" + name + "\" appears twice");
    section_ = name;
    return true;
  }
  template <class Value>
  bool scalar(Value value, const std::string& text) {
    if (depth_ == 0) return fail("the document is not a JSON object");
    if (section_ == "manifest") {
      if (!manifest_builder_.building()) return fail("\"manifest\" is not an object");
      manifest_builder_.value(json(value));
    } else if (section_ == "data") {
      if (depth_ == 1) return fail("\"data\" is not an object of tables");
      if (depth_ == 2) return fail("the rows of table '" + table_ + "' are not a list");
      if (depth_ == 3) return fail("row " + std::to_string(rows_ + 1) + " of table '" + table_ + "' is not an object");
      row_.scalar(text);
    }
    return true;
  }
  bool open(char bracket) {
    bool object = bracket == '{';
    if (depth_ == 0 && !object) return fail("the document is not a JSON object");
    if (section_ == "manifest" && depth_ >= 1) {
      if (depth_ == 1 && !object) return fail("\"manifest\" is not an object");
      manifest_builder_.start(object ? json::object() : json::array());
    } else if (section_ == "data") {
      if (depth_ == 1 && !object) return fail("\"data\" is not an object of tables");
      if (depth_ == 1) saw_data = true;
      if (depth_ == 2 && object) return fail("the rows of table '" + table_ + "' are not a list");
      if (depth_ == 2) begin_table();
      if (depth_ == 3 && !object) return fail("row " + std::to_string(rows_ + 1) + " of table '" + table_ + "' is not an object");
      if (depth_ == 3) row_.begin();
      else if (depth_ >= 4) row_.open(bracket);
    }
    ++depth_;
    return true;
  }
  bool close(char bracket) {
    --depth_;
    if (section_ == "manifest" && depth_ >= 1 && manifest_builder_.end()) {
      manifest = manifest_builder_.take();
      if (manifest_only_) {
        stopped_early = true;
        return false;
      }
    } else if (section_ == "data" && depth_ >= 3) {
      if (row_.close(bracket)) {
        ++rows_;
        if (events_.row) events_.row(table_, row_.text(), row_.keys());
      }
    } else if (section_ == "data" && depth_ == 2 && events_.table_ends) {
      events_.table_ends(table_, rows_);
    }
    if (depth_ == 1) section_.clear();
    return true;
  }
  void begin_table() {
    rows_ = 0;
    if (events_.table_begins) events_.table_begins(table_);
  }

  const snapshot_events& events_;
  bool manifest_only_;
  int depth_ = 0;
  std::string section_, table_;  // the top-level key, and the table of "data" being read
  long long rows_ = 0;
  json_builder manifest_builder_;
  row_writer row_;
};

// std::istream over a backup_reader: the snapshot decompressed (gzip, zstd, ...) as it is read.
class reader_buffer : public std::streambuf {
 public:
  explicit reader_buffer(backup_reader& reader) : reader_(reader), block_(256U << 10) {}

 protected:
  int_type underflow() override {
    std::size_t got = reader_.read(block_.data(), block_.size());
    if (got == 0) return traits_type::eof();
    setg(block_.data(), block_.data(), block_.data() + got);
    return traits_type::to_int_type(block_[0]);
  }

 private:
  backup_reader& reader_;
  std::vector<char> block_;
};

}  // namespace detail

/// Stream the snapshot `reader` reads through `events`; returns its manifest. With
/// `manifest_only`, stop once the manifest is read (when it comes first, nothing more is read).
/// Throws corrupt_backup naming the table for a truncated or malformed document, or one without a
/// manifest and data.
inline snapshot_manifest stream_snapshot(backup_reader& reader, const snapshot_events& events, bool manifest_only = false) {
  detail::reader_buffer buffer(reader);
  std::istream in(&buffer);
  detail::snapshot_sax handler(events, manifest_only);
  bool complete = nlohmann::json::sax_parse(in, &handler, nlohmann::json::input_format_t::json, true);
  if (!complete && !handler.stopped_early)
    throw corrupt_backup("the JSON snapshot " + reader.path().string() + " is damaged: " +
                         (handler.problem.empty() ? "the document ends early" : handler.problem));
  if (!handler.manifest) throw corrupt_backup("the JSON snapshot " + reader.path().string() + " has no \"manifest\"");
  if (!manifest_only && !handler.saw_data) throw corrupt_backup("the JSON snapshot " + reader.path().string() + " has no \"data\"");
  return parse_snapshot_manifest(*handler.manifest);
}

/// The manifest of the snapshot `file` (decompressed when compressed), read without its data
/// when the manifest comes first.
inline snapshot_manifest read_snapshot_manifest(const std::filesystem::path& file) {
  backup_reader reader(file);
  return stream_snapshot(reader, {}, true);
}

/// The whole snapshot `file` read through without a server, each table's rows counted against
/// its manifest: what disagrees ("public.users: the manifest says 3 rows, the file holds 2").
/// `rows` gets the rows read. Throws corrupt_backup, naming the table, for a damaged document.
inline std::vector<std::string> snapshot_disagreements(const std::filesystem::path& file, long long& rows) {
  std::map<std::string, long long> counted;
  snapshot_events events;
  events.table_ends = [&](const std::string& table, long long count) { counted[table] = count; };
  backup_reader reader(file);
  auto manifest = stream_snapshot(reader, events);
  std::vector<std::string> problems;
  rows = 0;
  for (const auto& [table, count] : counted) rows += count;
  for (const auto& table : manifest.tables) {
    auto found = counted.find(table.name);
    auto name = manifest.qualified(table.name);
    if (found == counted.end()) problems.push_back(name + ": the manifest lists it, but \"data\" holds no rows for it");
    else if (table.rows && *table.rows != found->second)
      problems.push_back(name + ": the manifest says " + std::to_string(*table.rows) + " rows, the file holds " + std::to_string(found->second));
  }
  for (const auto& [table, count] : counted)
    if (!manifest.find(table)) problems.push_back(manifest.qualified(table) + ": the file holds its rows, but the manifest does not list it");
  return problems;
}

/// What loading a snapshot found, per table of its "data", in file order.
struct snapshot_table_load {
  std::string table;  ///< schema-qualified
  long long rows = 0;  ///< rows in the file, all inserted when the load succeeded
  std::set<std::string> keys;  ///< the top-level keys of its rows: the columns the file carries
};

struct snapshot_load {
  bool ok = false;
  snapshot_manifest manifest;
  std::vector<snapshot_table_load> tables;
  std::vector<restore_problem> problems;
  double seconds = 0;

  const snapshot_table_load* find(const std::string& qualified) const {
    for (const auto& table : tables)
      if (table.table == qualified) return &table;
    return nullptr;
  }
};

namespace detail {

// A server error met while loading `table`: judged like any restore's (whose fault, what kind).
class snapshot_rejected : public std::runtime_error {
 public:
  snapshot_rejected(restore_problem problem_) : std::runtime_error(problem_.line), problem(std::move(problem_)) {}
  restore_problem problem;
};

// One libpq session into the restore target: COPY into a temporary staging table, then an
// INSERT ... SELECT per table that makes the server convert every JSON value to its column.
class snapshot_loader {
 public:
  snapshot_loader(const endpoint& target, std::string schema) : connection_(PQconnectdb(target.conninfo().c_str()), PQfinish), schema_(std::move(schema)) {
    if (PQstatus(connection_.get()) != CONNECTION_OK)
      throw could_not_verify("cannot connect to " + target.describe() + ": " + PQerrorMessage(connection_.get()));
    execute("", "SET client_min_messages = warning");
    execute("", "CREATE TEMPORARY TABLE pgdrill_snapshot_rows (doc jsonb)");
    // Foreign keys are dropped for the load and added back after it (as pg_restore adds them
    // after the data): rows load in any order, and every key is then checked by the server.
    auto keys = query("", "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid) "
                          "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid LEFT JOIN pg_class r ON r.oid = c.confrelid "
                          "WHERE c.contype = 'f' AND c.conparentid = 0 AND (t.relnamespace = " + namespace_oid() +
                          " OR r.relnamespace = " + namespace_oid() + ") ORDER BY 1, 2");
    for (auto& key : keys) {
      execute("", "ALTER TABLE " + key[0] + " DROP CONSTRAINT " + key[1]);
      foreign_keys_.push_back(std::move(key));
    }
  }

  void begin(const std::string& table) {
    current_ = table_name(schema_, table);
    auto found = query(current_, "SELECT c.oid, c.relkind FROM pg_class c WHERE c.relnamespace = " + namespace_oid() +
                                     " AND c.relname = " + quote_literal(table) + " AND c.relkind IN ('r', 'p')");
    if (found.empty())
      throw snapshot_rejected({"table not in the schema", current_ + ": the snapshot holds this table, but the schema has no such table", "", false,
                               "the snapshot and the schema it is restored into disagree"});
    columns_ = query(current_, "SELECT quote_ident(attname), quote_literal(attname), atttypid = 'bytea'::regtype, attgenerated <> '' "
                               "FROM pg_attribute WHERE attrelid = " + found[0][0] + " AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
    // The snapshot replaces the table's rows (seed rows of the migrations included), with its
    // triggers off as in any restore: an audit trigger must not add rows of its own.
    execute(current_, "ALTER TABLE " + quoted_table(current_) + " DISABLE TRIGGER USER");
    execute(current_, "DELETE FROM " + content_source(current_, found[0][1][0]));
    triggers_off_.push_back(current_);
    start_copy();
  }

  void row(const std::string& json_text) {
    for (char c : json_text) {  // COPY text format: a backslash is the only byte JSON text leaves to escape
      if (c == '\\') buffer_ += '\\';
      buffer_ += c;
    }
    buffer_ += '\n';
    if (buffer_.size() >= (256U << 10)) put();
    if ((staged_ += json_text.size()) >= (64U << 20)) flush();  // bounded staging on the server too
  }

  void end() { flush(); }

  /// Triggers back on and the foreign keys added back: a key the data breaks fails here.
  void finish() {
    for (const auto& table : triggers_off_) execute(table, "ALTER TABLE " + quoted_table(table) + " ENABLE TRIGGER USER");
    for (const auto& key : foreign_keys_) execute(key[0], "ALTER TABLE " + key[0] + " ADD CONSTRAINT " + key[1] + " " + key[2]);
    execute("", "DROP TABLE pgdrill_snapshot_rows");
  }

 private:
  using rows = std::vector<std::vector<std::string>>;

  std::string namespace_oid() const { return "(SELECT oid FROM pg_namespace WHERE nspname = " + quote_literal(schema_) + ")"; }

  [[noreturn]] void reject(const std::string& table, PGresult* result) {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const char* message = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const char* detail = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL) : nullptr;
    tool_error error{"", state ? state : "", message ? message : PQerrorMessage(connection_.get()), "", state != nullptr, ""};
    error.line = (table.empty() ? "" : table + ": ") + error.message + (detail ? " (" + std::string(detail) + ")" : "");
    if (result) PQclear(result);
    if (!state) error.sqlstate = PQstatus(connection_.get()) == CONNECTION_OK ? "" : "08006";
    throw snapshot_rejected(judge(error));
  }
  rows query(const std::string& table, const std::string& sql) {
    PGresult* result = PQexec(connection_.get(), sql.c_str());
    auto status = PQresultStatus(result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) reject(table, result);
    rows found(static_cast<std::size_t>(PQntuples(result)));
    for (int row = 0; row < PQntuples(result); ++row)
      for (int column = 0; column < PQnfields(result); ++column) found[static_cast<std::size_t>(row)].emplace_back(PQgetvalue(result, row, column));
    PQclear(result);
    return found;
  }
  void execute(const std::string& table, const std::string& sql) { query(table, sql); }

  void start_copy() {
    PGresult* result = PQexec(connection_.get(), "COPY pgdrill_snapshot_rows (doc) FROM STDIN");
    if (PQresultStatus(result) != PGRES_COPY_IN) reject(current_, result);
    PQclear(result);
    staged_ = 0;
  }
  void put() {
    if (!buffer_.empty() && PQputCopyData(connection_.get(), buffer_.data(), static_cast<int>(buffer_.size())) != 1)
      reject(current_, nullptr);
    buffer_.clear();
  }
  // The staged rows into the table, converted by the server, then a fresh staging COPY.
  void flush() {
    put();
    if (PQputCopyEnd(connection_.get(), nullptr) != 1) reject(current_, nullptr);
    for (PGresult* result; (result = PQgetResult(connection_.get())) != nullptr;) {
      if (PQresultStatus(result) != PGRES_COMMAND_OK) reject(current_, result);
      PQclear(result);
    }
    execute(current_, insert_statement());
    execute(current_, "TRUNCATE pgdrill_snapshot_rows");
    start_copy();
  }
  // Generated columns are computed again; bytea comes as \x hex, base64, or a Node.js Buffer
  // ({"type": "Buffer", "data": [bytes]}); every other value goes through jsonb_populate_record.
  std::string insert_statement() const {
    std::vector<std::string> names, values, set_apart;
    for (const auto& column : columns_) {
      const std::string &name = column[0], &key = column[1];
      bool bytea = column[2] == "t", generated = column[3] == "t";
      if (bytea || generated) set_apart.push_back(key);
      if (generated) continue;
      names.push_back(name);
      values.push_back(bytea ? bytea_from_json("s.doc -> " + key) : "r." + name);
    }
    std::string apart = set_apart.empty() ? "" : " - ARRAY[" + join(set_apart) + "]::text[]";
    return "INSERT INTO " + quoted_table(current_) + " (" + join(names) + ") OVERRIDING SYSTEM VALUE SELECT " + join(values) +
           " FROM pgdrill_snapshot_rows s, LATERAL jsonb_populate_record(NULL::" + quoted_table(current_) + ", s.doc" + apart + ") r";
  }
  static std::string bytea_from_json(const std::string& value) {
    std::string bytes_of = "(SELECT coalesce(decode(string_agg(lpad(to_hex(b::int), 2, '0'), '' ORDER BY i), 'hex'), ''::bytea) "
                           "FROM jsonb_array_elements_text(%) WITH ORDINALITY AS e(b, i))";
    auto with = [&](const std::string& array) { return bytes_of.substr(0, bytes_of.find('%')) + array + bytes_of.substr(bytes_of.find('%') + 1); };
    return "CASE jsonb_typeof(" + value + ") WHEN 'string' THEN CASE WHEN left(" + value + " #>> '{}', 2) = chr(92) || 'x' THEN decode(substr(" +
           value + " #>> '{}', 3), 'hex') ELSE decode(" + value + " #>> '{}', 'base64') END WHEN 'array' THEN " + with(value) +
           " WHEN 'object' THEN " + with(value + " -> 'data'") + " END";
  }

  std::unique_ptr<PGconn, decltype(&PQfinish)> connection_;
  std::string schema_, current_, buffer_;
  std::size_t staged_ = 0;
  rows columns_, foreign_keys_;
  std::vector<std::string> triggers_off_;
};

}  // namespace detail

/// Called while a snapshot loads: bytes of the file read so far, its size, seconds since the start.
using snapshot_progress = std::function<void(std::uint64_t done, double seconds)>;

/// Load the snapshot `file` into `target`, whose schema must already hold its tables: each
/// table's rows replace what is there. Never throws for the snapshot's own faults: a damaged
/// document or a row the schema rejects is a problem of the result, naming the table.
inline snapshot_load load_snapshot(const std::filesystem::path& file, const endpoint& target, const snapshot_progress& progress = {}) {
  snapshot_load load;
  auto started = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  backup_reader reader(file);
  try {
    load.manifest = read_snapshot_manifest(file);  // the schema to load into, whatever the order of the keys
    detail::snapshot_loader loader(target, load.manifest.schema);
    snapshot_events events;
    events.table_begins = [&](const std::string& table) {
      load.tables.push_back({load.manifest.qualified(table), 0, {}});
      loader.begin(table);
    };
    events.row = [&](const std::string&, const std::string& text, const std::vector<std::string>& keys) {
      ++load.tables.back().rows;
      load.tables.back().keys.insert(keys.begin(), keys.end());
      loader.row(text);
    };
    events.table_ends = [&](const std::string&, long long) {
      loader.end();
      if (progress) progress(reader.file_bytes_read(), seconds());
    };
    stream_snapshot(reader, events);
    loader.finish();
    load.ok = true;
  } catch (const detail::snapshot_rejected& rejected) {
    load.problems.push_back(rejected.problem);
  } catch (const corrupt_backup& damaged) {
    load.problems.push_back({"truncated or corrupt archive", damaged.what(), "", false, ""});
  }
  load.seconds = seconds();
  return load;
}

}  // namespace pgdrill
