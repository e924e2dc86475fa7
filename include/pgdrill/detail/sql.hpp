// SQL text helpers shared by checks, checksums and manifests: identifiers and table names.
#pragma once

#include <string>
#include <utility>

namespace pgdrill::detail {

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

/// "schema.table" -> {schema, table}; a bare "table" is in public.
inline std::pair<std::string, std::string> split_table(const std::string& table) {
  auto dot = table.find('.');
  if (dot == std::string::npos) return {"public", table};
  return {table.substr(0, dot), table.substr(dot + 1)};
}

/// "schema.table" with the schema made explicit, for names in reports.
inline std::string qualified_table(const std::string& table) {
  auto [schema, name] = split_table(table);
  return schema + "." + name;
}

/// A table name quoted for SQL: "schema"."table".
inline std::string quoted_table(const std::string& table) {
  auto [schema, name] = split_table(table);
  return quote_ident(schema) + "." + quote_ident(name);
}

}  // namespace pgdrill::detail
