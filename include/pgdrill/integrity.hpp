// Integrity of a restored database beyond its row counts: PostgreSQL's amcheck over indexes and
// heaps, constraints restored NOT VALID checked row by row, and a read of every stored value.
// Each reader returns what it looked at and what it found, for checks.hpp to judge.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/error.hpp>
#include <pgdrill/provider.hpp>

namespace pgdrill {

/// One problem an integrity reader found, and the object it concerns ("public.orders_pkey").
struct integrity_finding {
  std::string object, problem;
};

/// What an integrity reader covered ("12 B-tree indexes, 9 tables") and found.
struct integrity_report {
  std::string covered;
  std::vector<integrity_finding> findings;
};

namespace detail {

// Relations of the user's schemas, as "oid<TAB>quoted name", of the given relkinds.
inline pqxx::result user_relations_of_kind(pqxx::transaction_base& tx, const std::string& relkinds, const std::string& extra = "") {
  return tx.exec("SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_catalog.pg_class c JOIN "
                 "pg_catalog.pg_namespace n ON n.oid = c.relnamespace " + extra + " WHERE c.relkind = ANY (string_to_array(" +
                 tx.quote(relkinds) + ", ',')::\"char\"[]) AND n.nspname !~ '^(pg_catalog|information_schema|pg_toast|pg_temp_)' "
                 "AND c.relpersistence <> 't' ORDER BY 2");
}

// Runs `query`; a server error becomes a finding on `object` (autocommit: one failure does not
// abort the next statement).
template <class OnRows>
void probe(pqxx::nontransaction& tx, const std::string& object, const std::string& query, std::vector<integrity_finding>& findings,
           OnRows on_rows) {
  try {
    on_rows(tx.exec(query));
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::insufficient_privilege& failure) {  // the drill's rights, not the object, are wanting
    throw could_not_verify("insufficient privilege for the integrity check of " + object + " (on a shared server the drill's "
                           "role has no superuser rights: drill with the local or container provider): " + failure.what());
  } catch (const pqxx::sql_error& failure) {
    std::string text = failure.what();
    findings.push_back({object, text.substr(0, text.find('\n'))});
  }
}

// One query about one object; `on_rows` turns what it returns into findings (none: it only has
// to run without an error).
struct probe_task {
  std::string object, query;
  std::function<void(const pqxx::result&, std::vector<integrity_finding>&)> on_rows;
};

// The probes over up to `parallel` connections to `target` (0: one per core): each query an
// autocommit statement of its own, so one that fails is a finding and the rest go on. Findings
// come sorted by object; a lost connection throws.
inline std::vector<integrity_finding> run_probes(const endpoint& target, const std::vector<probe_task>& probes, int parallel = 0) {
  if (parallel <= 0) parallel = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(parallel), probes.size()));
  std::vector<std::vector<integrity_finding>> found(workers);
  std::vector<std::exception_ptr> failures(workers);
  std::atomic<std::size_t> next{0};
  auto work = [&](std::size_t worker) {
    try {
      pqxx::connection connection(target.conninfo());
      pqxx::nontransaction tx(connection);
      for (std::size_t index; (index = next++) < probes.size();) {
        const auto& task = probes[index];
        probe(tx, task.object, task.query, found[worker], [&](const pqxx::result& rows) {
          if (task.on_rows) task.on_rows(rows, found[worker]);
        });
      }
    } catch (...) {
      failures[worker] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t worker = 1; worker < workers; ++worker) threads.emplace_back(work, worker);
  work(0);
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures)
    if (failure) std::rethrow_exception(failure);
  std::vector<integrity_finding> findings;
  for (auto& some : found) findings.insert(findings.end(), some.begin(), some.end());
  std::stable_sort(findings.begin(), findings.end(), [](const auto& a, const auto& b) { return a.object < b.object; });
  return findings;
}

}  // namespace detail

/// amcheck over the database: bt_index_check(heapallindexed) on every valid B-tree index, and
/// verify_heapam on every table where the extension has it (PostgreSQL 14+). The extension is
/// created for the check and dropped after it, so the database is left as restored; the checks
/// run over `parallel` connections (0: one per core). Throws could_not_verify when the server
/// lacks amcheck's files.
inline integrity_report amcheck_database(const endpoint& target, int parallel = 0) {
  pqxx::connection connection(target.conninfo());
  pqxx::nontransaction tx(connection);
  bool created = tx.exec("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'amcheck'").empty();
  try {
    if (created) tx.exec("CREATE EXTENSION amcheck");
  } catch (const pqxx::insufficient_privilege& failure) {
    throw could_not_verify("amcheck needs superuser rights to be installed, which the drill's role on a shared server does not "
                           "have: drill with the local or container provider (" + std::string(failure.what()) + ")");
  } catch (const pqxx::sql_error& failure) {
    throw could_not_verify(std::string("amcheck is not available on the restore server (PostgreSQL's contrib modules): ") +
                           failure.what());
  }
  std::string schema = tx.exec("SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON "
                               "n.oid = x.extnamespace WHERE x.extname = 'amcheck'")[0][0].c_str();
  integrity_report report;
  auto indexes = detail::user_relations_of_kind(tx, "i", "JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid AND x.indisvalid "
                                                         "AND x.indisready JOIN pg_catalog.pg_am a ON a.oid = c.relam AND a.amname = 'btree'");
  std::vector<detail::probe_task> probes;
  for (const auto& index : indexes)
    probes.push_back({index[1].c_str(), "SELECT " + schema + ".bt_index_check(" + index[0].c_str() + ", true)", {}});
  bool heap = !tx.exec("SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'verify_heapam'").empty();
  auto tables = detail::user_relations_of_kind(tx, "r,m");
  if (heap)
    for (const auto& table : tables) {
      std::string name = table[1].c_str();
      probes.push_back({name, "SELECT blkno, offnum, msg FROM " + schema + ".verify_heapam(" + table[0].c_str() + ") LIMIT 3",
                        [name](const pqxx::result& rows, std::vector<integrity_finding>& findings) {
                          for (const auto& row : rows)
                            findings.push_back({name, std::string("block ") + row[0].c_str() + ", item " +
                                                          (row[1].is_null() ? "-" : row[1].c_str()) + ": " + row[2].c_str()});
                        }});
    }
  try {
    report.findings = detail::run_probes(target, probes, parallel);
  } catch (...) {
    if (created) tx.exec("DROP EXTENSION amcheck");
    throw;
  }
  if (created) tx.exec("DROP EXTENSION amcheck");
  report.covered = std::to_string(indexes.size()) + " B-tree indexes" +
                   (heap ? ", " + std::to_string(tables.size()) + " heaps" : " (heaps: verify_heapam needs PostgreSQL 14)");
  return report;
}

/// Every CHECK and foreign key the restore holds as NOT VALID, checked against every row: the
/// rows that break it are counted (and a few shown). The database is not changed.
inline integrity_report validate_not_valid_constraints(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  // For each: its table, name, and a query counting the rows that break it with up to 3 of them.
  auto constraints = tx.exec(R"SQL(
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname),
           CASE k.contype
             WHEN 'c' THEN format('SELECT count(*) OVER (), t::text FROM ONLY %I.%I t WHERE NOT (%s) LIMIT 3',
                                  n.nspname, c.relname, pg_get_expr(k.conbin, k.conrelid))
             ELSE format('SELECT count(*) OVER (), t::text FROM ONLY %I.%I t WHERE %s AND NOT EXISTS (SELECT 1 FROM %I.%I p WHERE %s) LIMIT 3',
                         n.nspname, c.relname,
                         (SELECT string_agg(format('t.%I IS NOT NULL', a.attname), ' AND ') FROM unnest(k.conkey) key(num)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = key.num),
                         fn.nspname, f.relname,
                         (SELECT string_agg(format('p.%I = t.%I', pa.attname, ca.attname), ' AND ')
                            FROM unnest(k.conkey, k.confkey) pair(child, parent)
                            JOIN pg_catalog.pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = pair.child
                            JOIN pg_catalog.pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = pair.parent))
           END
      FROM pg_catalog.pg_constraint k
      JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_class f ON f.oid = k.confrelid LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace
     WHERE NOT k.convalidated AND k.contype IN ('c', 'f') ORDER BY 1)SQL");
  integrity_report report;
  for (const auto& constraint : constraints)
    detail::probe(tx, constraint[0].c_str(), constraint[1].c_str(), report.findings, [&](const pqxx::result& rows) {
      if (rows.empty()) return;
      std::string shown;
      for (const auto& row : rows) shown += (shown.empty() ? "" : ", ") + std::string(row[1].c_str());
      report.findings.push_back({constraint[0].c_str(), std::string(rows[0][0].c_str()) + " rows break it, e.g. " + shown});
    });
  report.covered = std::to_string(constraints.size()) + " NOT VALID constraints";
  return report;
}

/// Every row of every table and populated materialized view read as text, which decompresses
/// and detoasts every value: a corrupt datum or page fails its table. Tables are read over
/// `parallel` connections (0: one per core).
inline integrity_report read_every_row(const endpoint& target, int parallel = 0) {
  pqxx::connection connection(target.conninfo());
  pqxx::nontransaction tx(connection);
  // WITH NO DATA materialized views store nothing to read.
  auto relations = detail::user_relations_of_kind(tx, "r,m", "JOIN pg_catalog.pg_class p ON p.oid = c.oid AND (p.relkind = 'r' OR p.relispopulated)");
  integrity_report report;
  std::atomic<long long> rows_read{0}, bytes_read{0};
  std::vector<detail::probe_task> probes;
  for (const auto& relation : relations)
    probes.push_back({relation[1].c_str(), "SELECT count(*), coalesce(sum(octet_length(t::text)), 0) FROM ONLY " + std::string(relation[1].c_str()) + " t",
                      [&](const pqxx::result& rows, std::vector<integrity_finding>&) {
                        rows_read += rows[0][0].as<long long>();
                        bytes_read += rows[0][1].as<long long>();
                      }});
  report.findings = detail::run_probes(target, probes, parallel);
  std::size_t read = relations.size();
  report.covered = std::to_string(read) + " tables and materialized views, " + std::to_string(rows_read) + " rows, " +
                   std::to_string(bytes_read) + " bytes of text";
  return report;
}

/// How many user tables (plain and partitioned) the database holds.
inline long long count_user_tables(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  return static_cast<long long>(detail::user_relations_of_kind(tx, "r,p,f").size());
}

}  // namespace pgdrill
