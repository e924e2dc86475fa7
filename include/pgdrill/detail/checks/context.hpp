// What checks need besides the database, and how every kind's checks are told to run.
#pragma once

#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/check_plan.hpp>
#include <pgdrill/checksums_during_restore.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/drift.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/snapshot.hpp>

namespace pgdrill::detail {

/// The leaves of tables hash-partitioned on an enum column, as "schema.table": a restore gives the
/// enum's labels new OIDs, which hash the rows to other leaves (pg_dump loads such tables through
/// their root), so only the partitioned table as a whole keeps the source's rows.
struct moving_partitions {
  std::map<std::string, std::string> root_of;                 ///< leaf -> the hash-partitioned table
  std::map<std::string, std::vector<std::string>> leaves_of;  ///< that table -> its leaves
};

/// Whether a kind's checks each run alone through its run_assertion overload (the default). False
/// for the kinds that do not: checksums run together (run_checksums), and presets are planned as
/// the kinds they stand for.
template <class Kind>
constexpr bool runs_alone = true;

// The table's rows as every check counts them (see content_source); a missing table is the
// same error the server gives, so it fails the check as the backup's fault.
inline std::string content_source_of(pqxx::transaction_base& tx, const std::string& table) {
  auto kind = tx.exec(relkind_query(table));
  if (kind.empty()) throw database_error("relation " + qualified_table(table) + " does not exist", sqlstate::undefined_table);
  return content_source(table, kind[0][0].c_str()[0]);
}

}  // namespace pgdrill::detail

namespace pgdrill {

/// What checks need besides the database: the backup's own time and its manifest, if any.
struct check_context {
  std::time_t backup_time = 0;
  const manifest* expected = nullptr;
  const endpoint* target = nullptr;  ///< the restored database, for checks that read it with their own connection
  /// The roles the restored backups' SQL refers to; null when the restore did not read them.
  const std::set<std::string>* referenced_roles = nullptr;
  /// The last passing drill and this one's measures, for drift checks; null when not taken.
  const drift_measures* drift = nullptr;
  /// What loading a JSON snapshot found (its manifest and each table's rows in the file); null
  /// for other backups.
  const snapshot_load* snapshot = nullptr;
  /// Checksums taken while the restore went on, by check; null when none.
  const std::map<check_id, checksum_outcome>* checksummed_during_restore = nullptr;
  /// Why the restore database has the server's default locale, not the source's; null or empty when it has the source's.
  const std::string* locale_unavailable = nullptr;
  /// Partitions whose rows a restore moves among their siblings (detail::read_moving_partitions); null when not read.
  const detail::moving_partitions* moving = nullptr;
};

}  // namespace pgdrill
