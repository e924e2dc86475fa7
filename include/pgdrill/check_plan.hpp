// The check plan: a scenario's assertions expanded against the backup's manifest into the checks
// a drill runs, each with a stable id. Computed once per drill; reports, coverage, drift and the
// checksums taken during the restore refer to its checks by id. Each kind's planning lives beside
// its running code (detail/checks/); this header holds what they share.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <pgdrill/assertions.hpp>
#include <pgdrill/checksums_during_restore.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/manifest.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

/// One assertion ready to run: manifest-wide assertions are expanded into one per table, and
/// every name is unique (it is the check's id). A non-empty `problem` means it cannot run
/// (reported as an error).
struct planned_check {
  check_id name;
  std::string kind;
  assertion check;
  std::string problem;
  bool per_manifest_table = false;  ///< stands for one check per manifest table, unexpanded: no manifest was found
};

/// The checks of one drill, in the order they run and are reported.
class check_plan {
 public:
  check_plan() = default;
  explicit check_plan(std::vector<planned_check> checks) : checks_(std::move(checks)) {
    for (std::size_t position = 0; position < checks_.size(); ++position) position_of_.emplace(checks_[position].name, position);
  }

  std::size_t size() const { return checks_.size(); }
  bool empty() const { return checks_.empty(); }
  const planned_check& operator[](std::size_t position) const { return checks_[position]; }
  const planned_check& at(std::size_t position) const { return checks_.at(position); }
  std::vector<planned_check>::const_iterator begin() const { return checks_.begin(); }
  std::vector<planned_check>::const_iterator end() const { return checks_.end(); }

  /// The check with this id; null when the plan has none.
  const planned_check* find(const check_id& id) const {
    auto found = position_of_.find(id);
    return found == position_of_.end() ? nullptr : &checks_[found->second];
  }

  /// The assertions of kind `Kind` among the checks that can run.
  template <class Kind>
  std::vector<const Kind*> runnable_of_kind() const {
    std::vector<const Kind*> found;
    for (const auto& check : checks_)
      if (const auto* one = std::get_if<Kind>(&check.check); one && check.problem.empty()) found.push_back(one);
    return found;
  }

  /// The checksum checks that can run, in plan order.
  std::vector<planned_checksum> checksums() const {
    std::vector<planned_checksum> found;
    for (const auto& check : checks_)
      if (const auto* sum = std::get_if<checksum_assertion>(&check.check); sum && check.problem.empty())
        found.push_back({check.name, sum->table, sum->columns});
    return found;
  }

  /// Whether a manifest-wide check stands unexpanded for its tables (no manifest was found).
  bool has_unexpanded() const {
    return std::any_of(checks_.begin(), checks_.end(), [](const planned_check& check) { return check.per_manifest_table; });
  }

 private:
  std::vector<planned_check> checks_;
  std::map<check_id, std::size_t> position_of_;  ///< by id: a drill looks up one check per result
};

namespace detail {

/// What each kind's planning (a `plan_check` overload beside its running code) uses: the manifest,
/// the checks planned so far, and the rules several kinds share.
class check_planner {
 public:
  explicit check_planner(const manifest* expected) : expected_(expected) {}

  /// The backup's manifest; null when none was found.
  const manifest* expected() const { return expected_; }

  /// Plan `check` as it is; a non-empty `problem` says why it cannot run.
  void add(assertion check, std::string problem = {}) {
    planned_.push_back({name_of(check), kind_of(check), std::move(check), std::move(problem), false});
  }

  /// Plan `check` with the problem that it needs a manifest and none was found.
  void add_without_manifest(assertion check, bool per_manifest_table = false) {
    add(std::move(check), "\"expect\": \"manifest\" but no manifest was found beside the backup");
    planned_.back().per_manifest_table = per_manifest_table;
  }

  /// Plan `check`, which compares with what a manifest recorded when `recorded` says it did
  /// (manifests of this pgdrill only): collations, the schema reference.
  void add_needing_recorded(assertion check, bool recorded, const std::string& what) {
    if (!expected_) return add_without_manifest(std::move(check));
    if (!recorded)
      return add(std::move(check), "this manifest records no " + what +
                                       " (an older pgdrill wrote it): take a new one with pgdrill dump or pgdrill manifest");
    add(std::move(check));
  }

  /// Plan `check`, which compares with the large objects, sequence values or materialized views
  /// recorded by format 2 manifests.
  void add_needing_objects(assertion check) {
    if (!expected_) return add_without_manifest(std::move(check));
    if (expected_->from_snapshot)
      return add(std::move(check), "a JSON snapshot's manifest records no large objects, sequences or materialized views");
    if (!expected_->objects_recorded)
      return add(std::move(check), "this manifest records no large objects, sequences or materialized views (an older pgdrill "
                                   "wrote it): take a new one with pgdrill dump or pgdrill manifest");
    if (auto unread = expected_->unreadable_of(kind_of(check)); !unread.empty())
      return add(std::move(check), "the manifest could not read these at backup time: " + unread);
    add(std::move(check));
  }

  /// A manifest without tables proves nothing: one check says so, failing unless allowed.
  template <class Check>
  void add_for_no_tables(const Check& check) {
    tables_present_assertion none;
    none.name = check.name.empty() ? per_table_name(check.kind, "") : check.name;
    none.allow_empty = check.allow_empty;
    add(none);
  }

  /// `check` once per manifest table (or for the one table it names) when it says
  /// "expect": "manifest", its expectation filled in by `fill(one, table)`; an explicit name is
  /// kept only when a single table is named.
  template <class Check, class Fill>
  void add_per_manifest_table(const Check& check, Fill fill) {
    if (!check.from_manifest) return add(check);
    if (!expected_) return add_without_manifest(check, check.table.empty());
    if (expected_->tables.empty() && check.table.empty()) return add_for_no_tables(check);
    for (const auto& table : expected_->tables) {
      if ((!check.table.empty() && qualified_table(check.table) != table.table) || excluded(check.except, table.table)) continue;
      auto one = check;
      one.table = table.table;
      if (check.table.empty()) one.name.clear();
      if (!table.error.empty()) {  // unreadable when the manifest was taken: nothing to compare with
        add(one, "the manifest could not read " + table.table + " at backup time: " + table.error);
        continue;
      }
      fill(one, table);
      add(one);
    }
    if (!check.table.empty() && !expected_->find(check.table)) add(check, "table " + check.table + " is not in the manifest");
  }

  /// Whether `except` names `table`.
  static bool excluded(const std::vector<std::string>& except, const std::string& table) {
    return std::any_of(except.begin(), except.end(), [&](const std::string& name) { return qualified_table(name) == table; });
  }

  /// The plan: a name that repeats gets " #2", " #3", ... so every check has its own id.
  check_plan finish() && {
    std::map<std::string, int> seen;
    for (auto& check : planned_)
      if (int count = ++seen[check.name]; count > 1) check.name += " #" + std::to_string(count);
    return check_plan(std::move(planned_));
  }

 private:
  const manifest* expected_;
  std::vector<planned_check> planned_;
};

}  // namespace detail

}  // namespace pgdrill
