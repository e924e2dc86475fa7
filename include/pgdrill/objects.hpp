// What a logical backup carries besides table rows: large objects, sequence values and
// materialized views. One reader for each, used on the source (manifests) and on the restore
// (checks), so both sides are read the same way.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <libpq-fe.h>

#include <pgdrill/checksum.hpp>
#include <pgdrill/detail/sql.hpp>

namespace pgdrill {

/// Every large object: how many, and the sum of XXH3-128 hashes of each one's "oid<TAB>sha256 of
/// its bytes" line (pg_dump keeps the oids, so a restore must reproduce both).
struct large_objects_state {
  long long count = 0;
  std::string digest;
  std::string error;  ///< why they could not be read (a manifest records it and goes on)
};

/// A sequence as pg_dump records it.
struct sequence_state {
  std::string sequence;  ///< "schema.name"
  long long last_value = 0;
  bool is_called = false;
  long long increment = 1;
  std::string error;  ///< why it could not be read

  /// The last value handed out (before the first nextval: one step before last_value).
  long long last_handed_out() const { return is_called ? last_value : last_value - increment; }
};

/// A materialized view: populated or not (WITH NO DATA), and its rows when populated.
struct matview_state {
  std::string view;  ///< "schema.name"
  bool populated = false;
  long long rows = 0;
  std::string error;  ///< why it could not be read
};

/// A collation the data depends on: its locale and the version its library reports. Text sorts
/// and compares as that library version does; another version may order it otherwise.
struct collation_state {
  std::string collation;  ///< "database default", or "schema.name"
  std::string locale;     ///< provider and locale: "libc en_US.UTF-8", "icu und-x-icu"
  std::string version;    ///< as the library reports it (empty: it reports none, e.g. C, or before PostgreSQL 15 for the default)
};

namespace detail {

// Objects of a kind (pg_class.relkind) in user schemas, extension members excluded, sorted;
// with whether this role may read them (asked first: an error would abort a snapshot's session).
inline std::vector<std::pair<std::string, bool>> user_relations(checksum_connection& connection, char relkind) {
  auto result = connection.execute(
      "SELECT n.nspname, c.relname, pg_catalog.has_table_privilege(c.oid, 'SELECT') AND "
      "pg_catalog.has_schema_privilege(n.oid, 'USAGE') FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = '" + std::string(1, relkind) +
      "' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND NOT EXISTS "
      "(SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid "
      "AND d.deptype = 'e') ORDER BY 1, 2");
  std::vector<std::pair<std::string, bool>> names;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    names.emplace_back(table_name(PQgetvalue(result.get(), row, 0), PQgetvalue(result.get(), row, 1)),
                       PQgetvalue(result.get(), row, 2)[0] == 't');
  return names;
}

inline std::string first_value(checksum_connection& connection, const std::string& sql, int column = 0) {
  auto result = connection.execute(sql);
  return PQntuples(result.get()) > 0 ? PQgetvalue(result.get(), 0, column) : "";
}

}  // namespace detail

/// Throws could_not_verify when one cannot be read (no privilege): run it on a connection of its own.
inline large_objects_state read_large_objects(checksum_connection& connection) {
  auto [count, digest] = connection.hash_rows(
      "SELECT oid, pg_catalog.encode(pg_catalog.sha256(pg_catalog.lo_get(oid)), 'hex') FROM pg_catalog.pg_largeobject_metadata");
  return {count, digest, ""};
}

inline std::vector<sequence_state> read_sequences(checksum_connection& connection) {
  std::vector<sequence_state> sequences;
  for (const auto& [name, readable] : detail::user_relations(connection, 'S')) {
    if (!readable) {
      sequences.push_back({name, 0, false, 1, "permission denied"});
      continue;
    }
    auto quoted = detail::quoted_table(name);
    auto result = connection.execute("SELECT s.last_value, s.is_called, q.seqincrement FROM " + quoted +
                                     " s, pg_catalog.pg_sequence q WHERE q.seqrelid = " + detail::quote_literal(quoted) +
                                     "::regclass");
    sequences.push_back({name, std::stoll(PQgetvalue(result.get(), 0, 0)), PQgetvalue(result.get(), 0, 1)[0] == 't',
                         std::stoll(PQgetvalue(result.get(), 0, 2)), ""});
  }
  return sequences;
}

inline std::vector<matview_state> read_matviews(checksum_connection& connection) {
  std::vector<matview_state> views;
  for (const auto& [name, readable] : detail::user_relations(connection, 'm')) {
    if (!readable) {
      views.push_back({name, false, 0, "permission denied"});
      continue;
    }
    auto quoted = detail::quoted_table(name);
    matview_state view{name, detail::first_value(connection, "SELECT relispopulated FROM pg_catalog.pg_class WHERE oid = " +
                                                                 detail::quote_literal(quoted) + "::regclass") == "t",
                       0, ""};
    if (view.populated) view.rows = std::stoll(detail::first_value(connection, "SELECT count(*) FROM " + quoted));
    views.push_back(view);
  }
  return views;
}

/// How many objects of each kind the user schemas hold (extension members and system schemas left
/// out): a restore that lost an index, a trigger or a policy shows here.
inline std::map<std::string, long long> read_schema_objects(checksum_connection& connection) {
  auto result = connection.execute(R"(
    WITH user_ns AS (SELECT oid FROM pg_catalog.pg_namespace
                     WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%'
                       AND nspname NOT LIKE 'pg\_temp%'),
         members AS (SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'),
         rels AS (SELECT c.oid, c.relkind FROM pg_catalog.pg_class c
                  WHERE c.relnamespace IN (SELECT oid FROM user_ns)
                    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid))
    SELECT 'tables', count(*) FROM rels WHERE relkind IN ('r', 'p')
    UNION ALL SELECT 'views', count(*) FROM rels WHERE relkind = 'v'
    UNION ALL SELECT 'materialized views', count(*) FROM rels WHERE relkind = 'm'
    UNION ALL SELECT 'sequences', count(*) FROM rels WHERE relkind = 'S'
    UNION ALL SELECT 'indexes', count(*) FROM rels WHERE relkind IN ('i', 'I')
    UNION ALL SELECT 'constraints', count(*) FROM pg_catalog.pg_constraint
      WHERE conrelid IN (SELECT oid FROM rels) OR contypid IN (SELECT oid FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM user_ns))
    UNION ALL SELECT 'triggers', count(*) FROM pg_catalog.pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM rels)
    UNION ALL SELECT 'policies', count(*) FROM pg_catalog.pg_policy WHERE polrelid IN (SELECT oid FROM rels)
    UNION ALL SELECT 'functions', count(*) FROM pg_catalog.pg_proc p WHERE pronamespace IN (SELECT oid FROM user_ns)
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid)
    UNION ALL SELECT 'types', count(*) FROM pg_catalog.pg_type t WHERE typnamespace IN (SELECT oid FROM user_ns)
      AND (typtype IN ('d', 'e', 'r') OR (typtype = 'c' AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = typrelid) = 'c'))
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid))");
  std::map<std::string, long long> counts;
  for (int row = 0; row < PQntuples(result.get()); ++row)
    counts[PQgetvalue(result.get(), row, 0)] = std::stoll(PQgetvalue(result.get(), row, 1));
  return counts;
}

/// The database's default collation, and every other collation a user column or index uses,
/// each with the version its library reports on this server (PostgreSQL 13 to 18: the locale
/// columns are read through to_jsonb, as their names changed).
inline std::vector<collation_state> read_collations(checksum_connection& connection) {
  auto with_provider = [](const std::string& column) {
    return "CASE " + column + " WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'default' END";
  };
  bool has_database_version = std::stoi(detail::first_value(connection, "SHOW server_version_num")) >= 150000;
  std::vector<collation_state> collations;
  auto add_rows = [&](const std::string& sql) {
    auto result = connection.execute(sql);
    for (int row = 0; row < PQntuples(result.get()); ++row)
      collations.push_back({PQgetvalue(result.get(), row, 0), PQgetvalue(result.get(), row, 1), PQgetvalue(result.get(), row, 2)});
  };
  add_rows("SELECT 'database default', " + with_provider("coalesce(to_jsonb(d) ->> 'datlocprovider', 'c')") +
           " || ' ' || coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', d.datcollate), " +
           (has_database_version ? "coalesce(pg_catalog.pg_database_collation_actual_version(d.oid), '')" : "''") +
           " FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()");
  add_rows("SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname), " +
           with_provider("c.collprovider") +
           " || ' ' || coalesce(to_jsonb(c) ->> 'colllocale', to_jsonb(c) ->> 'colliculocale', c.collcollate, ''), "
           "coalesce(pg_catalog.pg_collation_actual_version(c.oid), '') FROM pg_catalog.pg_collation c "
           "JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace WHERE c.collprovider <> 'd' AND c.oid IN ("
           "SELECT a.attcollation FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class r ON r.oid = a.attrelid "
           "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped "
           "AND rn.nspname NOT IN ('pg_catalog', 'information_schema') AND rn.nspname NOT LIKE 'pg\\_toast%' "
           "UNION SELECT unnest(i.indcollation::oid[]) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class r ON r.oid = i.indrelid "
           "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace WHERE rn.nspname NOT IN ('pg_catalog', 'information_schema')) "
           "ORDER BY 1");
  return collations;
}

}  // namespace pgdrill
