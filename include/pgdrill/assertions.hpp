// The assertion kinds a scenario can ask for. `assertion` below is THE list of kinds: each kind
// is one struct with its `kind` name, its `parse` from JSON and its `default_name`; the parser,
// the planner, the reports and the check runner (checks.hpp) are all derived from that list.
// Adding a kind: a struct here, its name in `assertion`, and its run_assertion in checks.hpp
// (a missing one does not compile).
#pragma once

#include <optional>  // optional bounds
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/detail/json_reader.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>

namespace pgdrill {

namespace detail {

// "expect": "manifest", "except": [...] and "allow_empty", shared by the kinds that can take
// the manifest.
template <class Assertion>
void read_manifest_keys(const json_reader& item, Assertion& check) {
  check.from_manifest = item.one_of("expect", {"manifest"}, "") == "manifest";
  check.except = item.strings("except");
  check.allow_empty = item.optional<bool>("allow_empty").value_or(false);
  if (!check.except.empty() && !check.from_manifest)
    item.fail(item.pointer_of("except"), "'except' goes with \"expect\": \"manifest\"");
  if (check.allow_empty && !check.from_manifest)
    item.fail(item.pointer_of("allow_empty"), "'allow_empty' goes with \"expect\": \"manifest\"");
}

inline std::string optional_name(const json_reader& item) { return item.optional<std::string>("name").value_or(""); }

// "row_count public.orders"; without a table, the manifest-wide check before it is planned per
// table (a drill that stopped before it read the manifest reports it under this name).
inline std::string per_table_name(const char* kind, const std::string& table) {
  return std::string(kind) + (table.empty() ? " of the manifest's tables" : " " + qualified_table(table));
}

}  // namespace detail

/// `row_count`: the table's row count, exactly, within bounds, or as the manifest recorded.
struct row_count_assertion {
  static constexpr const char* kind = "row_count";
  std::string name;   ///< explicit result name; default "row_count <schema.table>"
  std::string table;  ///< "schema.table" or "table" (public); empty with the manifest: every table
  std::optional<long long> equals, min, max;
  bool from_manifest = false;       ///< "expect": "manifest"
  std::vector<std::string> except;  ///< manifest tables not to check
  bool allow_empty = false;         ///< a manifest without tables passes (default: it fails)

  std::string default_name() const { return detail::per_table_name(kind, table); }

  static row_count_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "table", "equals", "min", "max", "expect", "except", "allow_empty"});
    row_count_assertion check;
    check.name = detail::optional_name(item);
    check.table = item.optional<std::string>("table").value_or("");
    check.equals = item.optional<long long>("equals");
    check.min = item.optional<long long>("min");
    check.max = item.optional<long long>("max");
    detail::read_manifest_keys(item, check);
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
};

/// `tables_present`: tables that must exist (and optionally hold rows); with the manifest,
/// every table it lists.
struct tables_present_assertion {
  static constexpr const char* kind = "tables_present";
  std::string name;
  std::vector<std::string> tables;
  bool non_empty = false;
  bool from_manifest = false;
  std::vector<std::string> except;
  bool allow_empty = false;  ///< an empty list (a manifest without tables) passes (default: it fails)

  std::string default_name() const { return kind; }

  static tables_present_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "tables", "non_empty", "expect", "except", "allow_empty"});
    tables_present_assertion check;
    check.name = detail::optional_name(item);
    check.tables = item.strings("tables");
    check.non_empty = item.optional<bool>("non_empty").value_or(false);
    detail::read_manifest_keys(item, check);
    if (check.tables.empty() && !check.from_manifest)
      item.fail(item.pointer_of("tables"), "needs a non-empty list of tables (or \"expect\": \"manifest\")");
    return check;
  }
};

/// `checksum`: a table's content checksum equals a literal or the manifest's value.
struct checksum_assertion {
  static constexpr const char* kind = "checksum";
  std::string name;
  std::string table;  ///< empty with the manifest: every table
  std::vector<std::string> columns;  ///< only these columns (default: all, in attribute order)
  std::string equals;                ///< 32 hex digits
  bool from_manifest = false;
  std::vector<std::string> except;
  bool allow_empty = false;

  std::string default_name() const { return detail::per_table_name(kind, table); }

  static checksum_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "table", "columns", "equals", "expect", "except", "allow_empty"});
    checksum_assertion check;
    check.name = detail::optional_name(item);
    check.table = item.optional<std::string>("table").value_or("");
    check.columns = item.strings("columns");
    check.equals = item.optional<std::string>("equals").value_or("");
    detail::read_manifest_keys(item, check);
    if (check.from_manifest == !check.equals.empty())
      item.fail(item.pointer(), "checksum needs exactly one of: equals, \"expect\": \"manifest\"");
    if (check.table.empty() && !check.from_manifest) item.fail(item.pointer_of("table"), "missing required key");
    if (!check.equals.empty() && (check.equals.size() != 32 || check.equals.find_first_not_of("0123456789abcdef") != std::string::npos))
      item.fail(item.pointer_of("equals"), "a checksum is 32 lowercase hex digits");
    if (!check.columns.empty() && check.from_manifest)
      item.fail(item.pointer_of("columns"), "the manifest's checksums cover its recorded columns; drop 'columns'");
    return check;
  }
};

/// `sql`: a query's single value compared with an expected value, or a query that must return
/// no rows (an invariant). Runs read-only with a statement timeout.
struct sql_assertion {
  static constexpr const char* kind = "sql";
  std::string name;
  std::string query;
  std::string op = "=";         ///< =, !=, <, <=, >, >=
  nlohmann::json expected;      ///< number, string, boolean or null
  bool expect_no_rows = false;
  double timeout_seconds = 60;

  /// "sql " and the query's first 60 characters on one line.
  std::string default_name() const {
    std::string text = query.substr(0, 60);
    for (char& ch : text)
      if (ch == '\n' || ch == '\t') ch = ' ';
    return std::string(kind) + " " + text;
  }

  static sql_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "query", "op", "expected", "expect_no_rows", "timeout_seconds"});
    sql_assertion check;
    check.name = detail::optional_name(item);
    check.query = item.required<std::string>("query");
    check.expect_no_rows = item.optional<bool>("expect_no_rows").value_or(false);
    check.op = item.one_of("op", {"=", "!=", "<", "<=", ">", ">="}, "=");
    check.timeout_seconds = item.optional<double>("timeout_seconds").value_or(60);
    if (check.timeout_seconds <= 0 || check.timeout_seconds > 86400)
      item.fail(item.pointer_of("timeout_seconds"), "must be more than 0 and at most 86400 (a day)");
    if (check.expect_no_rows == item.has("expected"))
      item.fail(item.pointer(), "sql needs exactly one of: expected, \"expect_no_rows\": true");
    if (item.has("expected")) {
      check.expected = item.raw("expected");
      if (check.expected.is_array() || check.expected.is_object())
        item.fail(item.pointer_of("expected"), "expected a number, string, boolean or null");
    }
    return check;
  }
};

/// `sequences`: by default every sequence owned by or defaulted into a column is at or past
/// that column's maximum; with "expect": "manifest", every sequence is at or past the value the
/// source had when the backup was taken.
struct sequences_assertion {
  static constexpr const char* kind = "sequences";
  std::string name;
  bool from_manifest = false;

  std::string default_name() const { return from_manifest ? "sequences as in the manifest" : kind; }

  static sequences_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "expect"});
    return {detail::optional_name(item), item.one_of("expect", {"manifest"}, "") == "manifest"};
  }
};

namespace detail {

// The kinds that only compare with the manifest: "type" and "expect": "manifest" are required.
template <class Assertion>
Assertion parse_manifest_only(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
  json_reader item(value, pointer, source, {"type", "name", "expect"});
  if (item.one_of("expect", {"manifest"}, "") != "manifest")
    item.fail(item.pointer_of("expect"), std::string(Assertion::kind) + " compares with the manifest: add \"expect\": \"manifest\"");
  return {optional_name(item)};
}

}  // namespace detail

/// `large_objects`: the restore holds the same large objects (oids and bytes) as the manifest.
struct large_objects_assertion {
  static constexpr const char* kind = "large_objects";
  std::string name;

  std::string default_name() const { return kind; }
  static large_objects_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_manifest_only<large_objects_assertion>(value, pointer, source);
  }
};

/// `collations`: the restored database sorts text as the source did: its default collation and
/// every collation a column or index uses have the locale and library version the manifest
/// recorded.
struct collations_assertion {
  static constexpr const char* kind = "collations";
  std::string name;

  std::string default_name() const { return kind; }
  static collations_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_manifest_only<collations_assertion>(value, pointer, source);
  }
};

/// `materialized_views`: every materialized view of the manifest is restored, populated where it
/// was in the source (its rows are reported: a restore refreshes it, so a view stale in the source
/// comes back current).
struct materialized_views_assertion {
  static constexpr const char* kind = "materialized_views";
  std::string name;

  std::string default_name() const { return kind; }
  static materialized_views_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_manifest_only<materialized_views_assertion>(value, pointer, source);
  }
};

/// `extensions_present`: these extensions are installed in the restored database.
struct extensions_present_assertion {
  static constexpr const char* kind = "extensions_present";
  std::string name;
  std::vector<std::string> extensions;

  std::string default_name() const { return kind; }

  static extensions_present_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "extensions"});
    extensions_present_assertion check{detail::optional_name(item), item.strings("extensions")};
    if (check.extensions.empty()) item.fail(item.pointer_of("extensions"), "needs a non-empty list of extensions");
    return check;
  }
};

/// `freshness`: the newest value of a timestamp column is within max_age_hours of the backup's
/// own time (the manifest's, else the backup file's).
struct freshness_assertion {
  static constexpr const char* kind = "freshness";
  std::string name;
  std::string table;
  std::string column;
  double max_age_hours = 24;

  std::string default_name() const { return std::string(kind) + " " + detail::qualified_table(table) + "." + column; }

  static freshness_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "table", "column", "max_age_hours"});
    return {detail::optional_name(item), item.required<std::string>("table"), item.required<std::string>("column"),
            item.required<double>("max_age_hours")};
  }
};

/// `schema_objects`: the restore holds as many tables, views, indexes, constraints, triggers,
/// policies, functions, types, sequences and materialized views as the manifest's source did.
struct schema_objects_assertion {
  static constexpr const char* kind = "schema_objects";
  std::string name;

  std::string default_name() const { return kind; }
  static schema_objects_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_manifest_only<schema_objects_assertion>(value, pointer, source);
  }
};

/// `roles`: every role the backup's SQL refers to (owners, grantees, policy roles) exists in the
/// target after the restore, else ownership and grants were lost. Every drill has one: when a
/// scenario lists none, the planner adds it. `ignore` names roles whose absence is accepted
/// ("*": all of them).
struct roles_assertion {
  static constexpr const char* kind = "roles";
  std::string name;
  std::vector<std::string> ignore;

  std::string default_name() const { return kind; }
  static roles_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "ignore"});
    return {detail::optional_name(item), item.strings("ignore")};
  }
};

/// `schema`: the restored database's schema reference (`pgdrill schema`: every table, column,
/// index, constraint, view, routine, trigger, policy, type, sequence and extension with its
/// definition) equals a committed one (`reference`: a file, relative to the scenario), or the one
/// the manifest recorded in the dump's snapshot (`"expect": "manifest"`).
struct schema_assertion {
  static constexpr const char* kind = "schema";
  std::string name;
  std::string reference;
  bool from_manifest = false;

  std::string default_name() const { return kind; }
  static schema_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "reference", "expect"});
    schema_assertion check{detail::optional_name(item), item.optional<std::string>("reference").value_or(""),
                           item.one_of("expect", {"manifest"}, "") == "manifest"};
    if (check.reference.empty() == !check.from_manifest)
      item.fail(pointer, "give either 'reference' (a file written by pgdrill schema) or \"expect\": \"manifest\"");
    return check;
  }
};

namespace detail {

// A kind whose only key is an optional name.
template <class Assertion>
Assertion parse_name_only(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
  detail::json_reader item(value, pointer, source, {"type", "name"});
  Assertion check;
  check.name = optional_name(item);
  return check;
}

}  // namespace detail

/// `amcheck`: PostgreSQL's amcheck over the restored database: every B-tree index checked with
/// `heapallindexed` (each heap tuple found in its index), and every table's heap (verify_heapam,
/// PostgreSQL 14 and newer). Needs the amcheck extension's files on the server (contrib).
struct amcheck_assertion {
  static constexpr const char* kind = "amcheck";
  std::string name;
  std::string default_name() const { return kind; }
  static amcheck_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_name_only<amcheck_assertion>(value, pointer, source);
  }
};

/// `constraints_valid`: every constraint restored NOT VALID (a CHECK or foreign key the source
/// never validated) holds for every row; the rows that break it are counted and shown.
struct constraints_valid_assertion {
  static constexpr const char* kind = "constraints_valid";
  std::string name;
  std::string default_name() const { return kind; }
  static constraints_valid_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_name_only<constraints_valid_assertion>(value, pointer, source);
  }
};

/// `read_all`: every row of every table and materialized view read, every TOAST value
/// decompressed: a corrupt datum anywhere fails it.
struct read_all_assertion {
  static constexpr const char* kind = "read_all";
  std::string name;
  std::string default_name() const { return kind; }
  static read_all_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_name_only<read_all_assertion>(value, pointer, source);
  }
};

/// `thorough`: the integrity preset, planned as amcheck, constraints_valid and read_all, and
/// collations when the backup's manifest recorded them.
struct thorough_assertion {
  static constexpr const char* kind = "thorough";
  std::string name;
  std::string default_name() const { return kind; }
  static thorough_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    return detail::parse_name_only<thorough_assertion>(value, pointer, source);
  }
};

/// `not_empty`: the restored database holds at least one user table; a restore of nothing
/// proves nothing. Every drill has one (the planner adds it); `allow_empty` accepts an empty one.
struct not_empty_assertion {
  static constexpr const char* kind = "not_empty";
  std::string name;
  bool allow_empty = false;
  std::string default_name() const { return kind; }
  static not_empty_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "allow_empty"});
    return {detail::optional_name(item), item.optional<bool>("allow_empty").value_or(false)};
  }
};

/// What a drift check compares with the last passing drill of the scenario.
enum class drift_aspect { all, rows, backup_size, restore_time, schema };

/// `drift`: this drill against the last passing drill of the same scenario in its history: each
/// table's row count, the backup's size, the restore time and the schema. Each limit given is
/// planned as its own check ("drift rows", ...).
struct drift_assertion {
  static constexpr const char* kind = "drift";
  std::string name;  ///< explicit prefix of the planned names; default "drift"
  std::optional<double> max_row_drop;        ///< no table loses more than this fraction of its rows
  std::optional<double> max_size_drop;       ///< the backup shrinks by at most this fraction
  std::optional<double> max_restore_growth;  ///< the restore takes at most this many times as long
  std::string schema;                        ///< "fail" or "warn" on a changed schema; empty: not compared
  drift_aspect aspect = drift_aspect::all;   ///< as planned: the one thing compared
  double limit = 0;                          ///< as planned: that aspect's limit
  bool warn_only = false;                    ///< as planned: a schema change passes with a warning

  std::string default_name() const {
    static const char* suffixes[] = {"", " rows", " backup size", " restore time", " schema"};
    return std::string(kind) + suffixes[static_cast<int>(aspect)];
  }
  static drift_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "max_row_drop", "max_size_drop", "max_restore_growth", "schema"});
    drift_assertion check;
    check.name = detail::optional_name(item);
    auto fraction = [&](const char* key) {
      auto limit = item.optional<double>(key);
      if (limit && (*limit < 0 || *limit > 1)) item.fail(item.pointer_of(key), "a fraction from 0 to 1 (0.2 is 20%)");
      return limit;
    };
    check.max_row_drop = fraction("max_row_drop");
    check.max_size_drop = fraction("max_size_drop");
    check.max_restore_growth = item.optional<double>("max_restore_growth");
    if (check.max_restore_growth && *check.max_restore_growth < 1)
      item.fail(item.pointer_of("max_restore_growth"), "a factor of at least 1 (2 allows twice the time)");
    check.schema = item.one_of("schema", {"fail", "warn"}, "");
    if (!check.max_row_drop && !check.max_size_drop && !check.max_restore_growth && check.schema.empty())
      item.fail(pointer, "give at least one of max_row_drop, max_size_drop, max_restore_growth, schema");
    return check;
  }
};

/// `snapshot`: a JSON table snapshot against its own manifest, planned per table (`snapshot
/// public.users`: the manifest's row count, the rows in the file and the rows restored agree; the
/// manifest's columns, the file's and the restored table's agree) and once for the whole
/// (`snapshot`: totalRows is the sum; the tables in "data" are the manifest's; `include` tables are
/// in it, `exclude` tables are not). Every drill of a JSON snapshot has one (the planner adds it).
struct snapshot_assertion {
  static constexpr const char* kind = "snapshot";
  std::string name;
  std::vector<std::string> include;  ///< tables the snapshot must hold
  std::vector<std::string> exclude;  ///< tables it must leave out (operational ones: audit_logs, ...)
  std::string table;                 ///< as planned: the one table compared; empty: the whole snapshot

  std::string default_name() const { return table.empty() ? kind : std::string(kind) + " " + table; }
  static snapshot_assertion parse(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
    detail::json_reader item(value, pointer, source, {"type", "name", "include", "exclude"});
    return {detail::optional_name(item), item.strings("include"), item.strings("exclude"), ""};
  }
};

/// Every assertion kind, in the order the docs list them.
using assertion = std::variant<row_count_assertion, tables_present_assertion, checksum_assertion, sql_assertion,
                               sequences_assertion, extensions_present_assertion, freshness_assertion,
                               large_objects_assertion, materialized_views_assertion, schema_objects_assertion, roles_assertion,
                               schema_assertion, amcheck_assertion, constraints_valid_assertion, read_all_assertion,
                               thorough_assertion, not_empty_assertion, drift_assertion, collations_assertion, snapshot_assertion>;

/// "row_count", "checksum", ...: the kind of one assertion.
inline std::string kind_of(const assertion& check) {
  return std::visit([](const auto& c) { return std::string(std::decay_t<decltype(c)>::kind); }, check);
}

/// The name its result carries: the scenario's explicit name, else the kind's default.
inline std::string name_of(const assertion& check) {
  return std::visit([](const auto& c) { return c.name.empty() ? c.default_name() : c.name; }, check);
}

namespace detail {

template <std::size_t... Index>
std::vector<std::string> kind_names(std::index_sequence<Index...>) {
  return {std::variant_alternative_t<Index, assertion>::kind...};
}

template <std::size_t... Index>
std::optional<assertion> parse_kind(const std::string& type, const nlohmann::json& value, const std::string& pointer,
                                    const std::string& source, std::index_sequence<Index...>) {
  std::optional<assertion> parsed;
  auto try_kind = [&](auto kind_tag) {
    using kind = typename decltype(kind_tag)::type;
    if (!parsed && type == kind::kind) parsed = kind::parse(value, pointer, source);
  };
  (try_kind(std::common_type<std::variant_alternative_t<Index, assertion>>{}), ...);
  return parsed;
}

}  // namespace detail

/// Every kind's name, as the scenario's "type" spells it.
inline std::vector<std::string> assertion_kinds() {
  return detail::kind_names(std::make_index_sequence<std::variant_size_v<assertion>>{});
}

/// One entry of a scenario's "assertions" array; a usage_error names its JSON pointer.
inline assertion parse_assertion(const nlohmann::json& value, const std::string& pointer, const std::string& source) {
  if (!value.is_object()) detail::json_reader(value, pointer, source, {});  // reports the wrong type
  detail::json_reader item(value, pointer, source, {});
  std::string type = item.optional<std::string>("type").value_or("");
  if (type.empty() && !item.has("type")) item.fail(pointer + "/type", "missing required key");
  auto parsed = detail::parse_kind(type, value, pointer, source, std::make_index_sequence<std::variant_size_v<assertion>>{});
  if (!parsed)
    item.fail(pointer + "/type", "'" + type + "' is not one of: " +
                                     detail::join(assertion_kinds()));
  return *parsed;
}

}  // namespace pgdrill
