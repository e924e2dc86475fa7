// SQL text helpers shared by checks, checksums and manifests: identifiers and table names.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pgdrill::detail {

/// The session settings every checksum connection and the schema reader pin, so that text
/// output (values, literals in definitions) does not depend on the server's, the database's or
/// the role's defaults.
inline const std::vector<std::pair<std::string, std::string>>& pinned_session_settings() {
  static const std::vector<std::pair<std::string, std::string>> settings{
      {"DateStyle", "ISO, YMD"}, {"IntervalStyle", "postgres"}, {"extra_float_digits", "3"},
      {"TimeZone", "UTC"},       {"bytea_output", "hex"},       {"client_encoding", "UTF8"},
      // regclass, regtype, ... print schema-qualified and quoted only where needed; money prints
      // without a currency symbol
      {"search_path", "pg_catalog"}, {"quote_all_identifiers", "off"}, {"lc_monetary", "C"},
      // a policy must never hide rows from a checksum: reading such a table fails instead
      {"row_security", "off"}};
  return settings;
}

/// An identifier quoted for SQL: "my ""odd"" name".
inline std::string quote_ident(const std::string& name) {
  std::string text = "\"";
  for (char c : name) text += c == '"' ? std::string("\"\"") : std::string(1, c);
  return text + "\"";
}

/// A literal quoted for SQL: 'it''s'.
inline std::string quote_literal(const std::string& value) {
  std::string text = "'";
  for (char c : value) text += c == '\'' ? std::string("''") : std::string(1, c);
  return text + "'";
}

/// One part of a table name as pgdrill writes it: as is, or double-quoted SQL-style when it holds
/// a dot or a double quote (so "schema.table" always splits back the same way).
inline std::string name_part(const std::string& part) {
  return part.find_first_of(".\"") == std::string::npos ? part : quote_ident(part);
}

/// "schema.table" from its parts: the form manifests, reports and history key tables by.
inline std::string table_name(const std::string& schema, const std::string& table) {
  return name_part(schema) + "." + name_part(table);
}

/// "schema.table" -> {schema, table}: the first dot outside double quotes separates them; a part
/// may be double-quoted ("my.schema"."t", "" for a quote); a bare "table" is in public.
inline std::pair<std::string, std::string> split_table(const std::string& text) {
  std::string schema, current;
  bool quoted = false, split = false;
  for (std::size_t index = 0; index < text.size(); ++index) {
    char c = text[index];
    if (quoted && c == '"' && index + 1 < text.size() && text[index + 1] == '"') {
      current += '"';
      ++index;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '.' && !quoted && !split) {
      schema = current;
      current.clear();
      split = true;
    } else {
      current += c;
    }
  }
  return split ? std::pair<std::string, std::string>{schema, current} : std::pair<std::string, std::string>{"public", current};
}

/// "schema.table" with the schema made explicit, for names in reports.
inline std::string qualified_table(const std::string& table) {
  auto [schema, name] = split_table(table);
  return table_name(schema, name);
}

/// A table name quoted for SQL: "schema"."table".
inline std::string quoted_table(const std::string& table) {
  auto [schema, name] = split_table(table);
  return quote_ident(schema) + "." + quote_ident(name);
}

/// What "a table's rows" means everywhere (manifests, row counts, checksums): its own rows
/// (ONLY: an inheritance parent without its children, each child counted as itself), except a
/// partitioned table, which has none of its own and stands for all its partitions. `relkind` is
/// pg_class.relkind of the table.
inline std::string content_source(const std::string& table, char relkind) {
  return (relkind == 'p' ? "" : "ONLY ") + quoted_table(table);
}

/// The query for a table's relkind; no row when the table does not exist.
inline std::string relkind_query(const std::string& table) {
  return "SELECT relkind FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass(" + quote_literal(quoted_table(table)) + ")";
}

}  // namespace pgdrill::detail
