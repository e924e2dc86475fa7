// The schema reference: one sorted line per catalog object of a database, with what defines
// it, so a restore can be compared with a committed reference (or the last passing drill) and
// a dropped column, index, trigger or policy is named rather than counted. Read the same way on
// the source and on the restore, PostgreSQL 13 to 18.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/detail/sql.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

/// The reference's format: 2 prints literals in pinned session settings (UTC, ISO dates) and
/// names foreign keys cloned onto partitions by their parent's; 1 printed them as the source's
/// session did.
constexpr int schema_reference_format = 2;

/// The key manifests and the drill history keep the reference under; older pgdrills' "schema"
/// (format 1) is read as no reference at all.
constexpr const char* schema_reference_key = "schema_2";

/// How every reference file's first line opens, whatever its format (a file beside the backups
/// that opens so is never taken for one).
constexpr const char* schema_reference_opening = "# pgdrill schema reference ";

/// The first line of a reference file; readers skip every other line starting with '#'.
constexpr const char* schema_reference_header =
    "# pgdrill schema reference 2: KIND<TAB>NAME<TAB>DEFINITION, sorted; literals in UTC and ISO dates";

namespace detail {

// Objects of the user's schemas that no extension owns. `oid` and `catalog` name the object.
inline std::string user_object(const std::string& namespace_oid, const std::string& oid, const std::string& catalog) {
  return "(SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = " + namespace_oid +
         ") !~ '^(pg_catalog|information_schema|pg_toast|pg_temp_|pg_toast_temp_)' AND NOT EXISTS (SELECT 1 FROM "
         "pg_catalog.pg_depend e WHERE e.classid = '" + catalog + "'::regclass AND e.objid = " + oid + " AND e.deptype = 'e')";
}

inline std::string relation_name(const std::string& alias) {
  return "(SELECT quote_ident(nspname) FROM pg_catalog.pg_namespace WHERE oid = " + alias + ".relnamespace) || '.' || quote_ident(" +
         alias + ".relname)";
}

// Definitions print across lines; whitespace is not part of what defines an object.
inline std::string squeezed(const std::string& expression) { return "btrim(regexp_replace(" + expression + ", '\\s+', ' ', 'g'))"; }

// One query per kind, each yielding (kind, name, definition). Choices that keep one reference
// valid across majors: PostgreSQL 18's NOT NULL constraints are left to the columns' "not
// null"; triggers and constraints cloned onto partitions (tgparentid, conparentid) are their
// parent's (a restore names a cloned foreign key otherwise than the source did); column order is
// not compared (inheritance and dropped columns move it on a restore).
inline std::vector<std::string> schema_queries() {
  const std::string table = relation_name("c");
  return {
      "SELECT 'schema', quote_ident(n.nspname), '' FROM pg_catalog.pg_namespace n WHERE " +
          user_object("n.oid", "n.oid", "pg_namespace"),
      "SELECT 'table', " + table + ", concat_ws(' ', CASE c.relkind WHEN 'p' THEN 'partitioned by ' || pg_get_partkeydef(c.oid) "
          "WHEN 'f' THEN 'foreign' END, CASE WHEN c.relispartition THEN 'partition of ' || (SELECT " + relation_name("p") +
          " FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid) || ' ' || "
          "pg_get_expr(c.relpartbound, c.oid) END, (SELECT 'inherits ' || string_agg(" + relation_name("p") + ", ', ' ORDER BY "
          "i.inhseqno) FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid AND "
          "NOT c.relispartition), CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END, CASE WHEN c.relrowsecurity THEN 'row "
          "security' END, CASE WHEN c.relforcerowsecurity THEN 'forced' END) FROM pg_catalog.pg_class c WHERE c.relkind IN "
          "('r', 'p', 'f') AND " + user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT 'column', " + table + " || '.' || quote_ident(a.attname), concat_ws(' ', format_type(a.atttypid, a.atttypmod), "
          "CASE WHEN a.attcollation <> t.typcollation THEN 'collate ' || (SELECT quote_ident(collname) FROM "
          "pg_catalog.pg_collation WHERE oid = a.attcollation) END, CASE WHEN a.attnotnull THEN 'not null' END, CASE "
          "WHEN a.attgenerated <> '' THEN 'generated always as (' || pg_get_expr(d.adbin, d.adrelid) || ')' || CASE "
          "a.attgenerated WHEN 's' THEN ' stored' ELSE ' virtual' END WHEN d.adbin IS NOT NULL THEN 'default ' || "
          "pg_get_expr(d.adbin, d.adrelid) END, CASE a.attidentity WHEN 'a' THEN 'identity always' WHEN 'd' THEN 'identity by "
          "default' END) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_type t "
          "ON t.oid = a.atttypid LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE "
          "a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f') AND " +
          user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT 'index', " + table + ", " + squeezed("pg_get_indexdef(c.oid)") + " FROM pg_catalog.pg_class c WHERE c.relkind IN "
          "('i', 'I') AND " + user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT 'constraint', " + table + " || '.' || quote_ident(k.conname), " + squeezed("pg_get_constraintdef(k.oid)") +
          " FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid WHERE k.contype IN ('c', 'f', 'p', "
          "'u', 'x', 't') AND k.conparentid = 0 AND " + user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, " + table + ", " +
          squeezed("pg_get_viewdef(c.oid)") + " FROM pg_catalog.pg_class c WHERE c.relkind IN ('v', 'm') AND " +
          user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT 'sequence', " + table + ", format('%s start %s increment %s min %s max %s cache %s%s', format_type(s.seqtypid, "
          "NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END) "
          "FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid WHERE " +
          user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE "
          "'function' END, quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || "
          "pg_get_function_identity_arguments(p.oid) || ')', concat_ws(' ', 'returns ' || pg_get_function_result(p.oid), "
          "'language ' || l.lanname, CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END, "
          "CASE WHEN p.proisstrict THEN 'strict' END, CASE WHEN p.prosecdef THEN 'security definer' END, 'body md5 ' || "
          "md5(coalesce(p.prosrc, ''))) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
          "JOIN pg_catalog.pg_language l ON l.oid = p.prolang WHERE " + user_object("p.pronamespace", "p.oid", "pg_proc"),
      "SELECT 'trigger', " + table + " || '.' || quote_ident(g.tgname), " + squeezed("pg_get_triggerdef(g.oid)") +
          " FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid WHERE NOT g.tgisinternal AND "
          "g.tgparentid = 0 AND " + user_object("c.relnamespace", "c.oid", "pg_class"),
      "SELECT 'policy', quote_ident(y.schemaname) || '.' || quote_ident(y.tablename) || '.' || quote_ident(y.policyname), "
          "concat_ws(' ', lower(y.permissive), 'for ' || lower(y.cmd), 'to ' || array_to_string(y.roles, ', '), 'using (' || " +
          squeezed("y.qual") + " || ')', 'with check (' || " + squeezed("y.with_check") + " || ')') FROM pg_catalog.pg_policies y "
          "WHERE y.schemaname !~ '^(pg_catalog|information_schema)$'",
      "SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, quote_ident(n.nspname) || '.' || quote_ident(t.typname), "
          "CASE t.typtype WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(enumlabel), ', ' ORDER BY enumsortorder) "
          "FROM pg_catalog.pg_enum WHERE enumtypid = t.oid) || ')' WHEN 'c' THEN 'composite (' || (SELECT "
          "string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM "
          "pg_catalog.pg_attribute WHERE attrelid = t.typrelid AND attnum > 0 AND NOT attisdropped) || ')' WHEN 'r' THEN "
          "'range of ' || (SELECT format_type(rngsubtype, NULL) FROM pg_catalog.pg_range WHERE rngtypid = t.oid) WHEN 'd' THEN "
          "concat_ws(' ', format_type(t.typbasetype, t.typtypmod), CASE WHEN t.typnotnull THEN 'not null' END, 'default ' || "
          "t.typdefault, (SELECT string_agg(pg_get_constraintdef(oid), ' ' ORDER BY conname) FROM pg_catalog.pg_constraint "
          "WHERE contypid = t.oid AND contype = 'c')) ELSE t.typtype::text END FROM pg_catalog.pg_type t JOIN "
          "pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'c', 'r', 'd') AND (t.typrelid = 0 OR "
          "(SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c') AND " +
          user_object("t.typnamespace", "t.oid", "pg_type"),
      "SELECT 'extension', quote_ident(x.extname), 'version ' || x.extversion || ' schema ' || (SELECT quote_ident(nspname) FROM "
          "pg_catalog.pg_namespace WHERE oid = x.extnamespace) FROM pg_catalog.pg_extension x",
  };
}

}  // namespace detail

/// The schema reference as `tx` sees the database, inside a transaction block (a manifest reads
/// it in the dump's snapshot): one "KIND<TAB>NAME<TAB>DEFINITION" line per object (names quoted
/// as SQL needs them), sorted byte-wise.
inline std::vector<std::string> read_schema_reference(pqxx::transaction_base& tx) {
  // Definitions print literals in the session's settings and name objects relative to its search
  // path: pinned, the source's and the restore's read alike whatever their server, database or
  // role set.
  for (const auto& [name, value] : detail::pinned_session_settings())
    tx.exec("SET LOCAL " + name + " = " + detail::quote_literal(value));
  std::vector<std::string> lines;
  for (const auto& query : detail::schema_queries())
    for (const auto& row : tx.exec(query))
      lines.push_back(std::string(row[0].c_str()) + "\t" + row[1].c_str() + "\t" + (row[2].is_null() ? "" : row[2].c_str()));
  std::sort(lines.begin(), lines.end());
  return lines;
}

/// The schema reference of the database `connection` is on.
inline std::vector<std::string> read_schema_reference(pqxx::connection& connection) {
  pqxx::read_transaction tx(connection);
  return read_schema_reference(tx);
}

/// A reference file's lines (comments and blank lines skipped); could_not_verify when unreadable,
/// or not of this format (an older one would be compared into false differences).
inline std::vector<std::string> read_schema_reference_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw could_not_verify("cannot read the schema reference " + file.string());
  std::string header;
  std::getline(in, header);
  const std::string prefix = schema_reference_opening;
  if (header.rfind(prefix, 0) != 0)
    throw could_not_verify(file.string() + " is not a pgdrill schema reference: its first line is not '" +
                           schema_reference_header + "'; write one with pgdrill schema");
  if (int format = std::atoi(header.c_str() + prefix.size()); format != schema_reference_format)
    throw could_not_verify("the schema reference " + file.string() + " is of format " + std::to_string(format) +
                           (format < schema_reference_format ? ", written by an older pgdrill with literals in the source's session "
                                                               "settings (TimeZone, DateStyle)"
                                                             : ", newer than this pgdrill reads") +
                           ": record it again with pgdrill schema");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  return lines;
}

/// How a database's schema differs from a reference: objects only in the reference, only in
/// the database, and in both with another definition ("reference line", "database line").
struct schema_difference {
  std::vector<std::string> missing, unexpected;
  std::vector<std::pair<std::string, std::string>> changed;

  bool empty() const { return missing.empty() && unexpected.empty() && changed.empty(); }
};

namespace detail {

// "KIND<TAB>NAME" of a reference line: what identifies the object.
inline std::string object_key(const std::string& line) {
  auto second_tab = line.find('\t', line.find('\t') + 1);
  return line.substr(0, second_tab);
}

// The DEFINITION of a reference line (empty when it has none).
inline std::string object_definition(const std::string& line) {
  auto key = object_key(line);
  return key.size() < line.size() ? line.substr(key.size() + 1) : "";
}

}  // namespace detail

/// How a database's schema differs from `reference`.
inline schema_difference diff_schema(const std::vector<std::string>& reference, const std::vector<std::string>& actual) {
  std::map<std::string, std::string> expected, found;
  for (const auto& line : reference) expected[detail::object_key(line)] = line;
  for (const auto& line : actual) found[detail::object_key(line)] = line;
  schema_difference difference;
  for (const auto& [key, line] : expected) {
    auto other = found.find(key);
    if (other == found.end()) difference.missing.push_back(line);
    else if (other->second != line) difference.changed.emplace_back(line, other->second);
  }
  for (const auto& [key, line] : found)
    if (!expected.count(key)) difference.unexpected.push_back(line);
  return difference;
}

namespace detail {

// A schema difference as a check's verdict against `against` (a file, an earlier drill): the
// missing, unexpected and changed objects, a few in the message, every one in the detail.
inline void judge_schema_difference(const schema_difference& difference, const std::string& against, step_result& step) {
  auto shown = [](const std::string& line) {  // "column public.t.c: definition"
    std::string key = object_key(line), definition = object_definition(line);
    if (auto tab = key.find('\t'); tab != std::string::npos) key[tab] = ' ';
    return key + (definition.empty() ? "" : ": " + definition);
  };
  std::vector<std::string> items;
  for (const auto& line : difference.missing) items.push_back("missing " + shown(line));
  for (const auto& line : difference.unexpected) items.push_back("unexpected " + shown(line));
  for (const auto& [was, now] : difference.changed) items.push_back("changed " + shown(was) + " -> now: " + object_definition(now));
  step.actual = std::to_string(difference.missing.size()) + " missing, " + std::to_string(difference.unexpected.size()) +
                " unexpected, " + std::to_string(difference.changed.size()) + " changed";
  std::string few;
  list_failures(items, few, step.detail);
  pass_or_fail(step, difference.empty(), "the schema matches " + against,
               "the schema differs from " + against + " (" + step.actual + "): " + few);
}

}  // namespace detail

}  // namespace pgdrill
