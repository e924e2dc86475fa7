// Backup hygiene: checks on the file itself and on a directory's history, run before any server.
#pragma once

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>  // optional limits
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <pgdrill/backup.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/result.hpp>
#include <pgdrill/scenario.hpp>

namespace pgdrill {

/// SHA-256 of a file as lowercase hex, read in blocks (constant memory).
inline std::string sha256_file(const std::filesystem::path& file) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw could_not_verify("cannot read " + file.string() + " to hash it");
  std::vector<char> block(1U << 20);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    EVP_DigestUpdate(context.get(), block.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  std::string hex;
  char pair[3];
  for (unsigned int index = 0; index < length; ++index) {
    std::snprintf(pair, sizeof pair, "%02x", digest[index]);
    hex += pair;
  }
  return hex;
}

/// The SHA-256 sidecar of a directory-format archive: one `sha256sum` line per file ("HEX  PATH",
/// the path relative to the directory), sorted by path, so `cd DIR && sha256sum -c ../DIR.sha256`
/// checks it too.
inline std::string directory_sha256_lines(const std::filesystem::path& directory) {
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory))
    if (entry.is_regular_file())
      lines.push_back(sha256_file(entry.path()) + "  " + std::filesystem::relative(entry.path(), directory).generic_string());
  std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) { return a.substr(66) < b.substr(66); });
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

namespace detail {

// "path -> hex" of sha256sum lines.
inline std::map<std::string, std::string> sha256_lines_by_path(const std::string& text) {
  std::map<std::string, std::string> files;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > 66) files[line.substr(66)] = line.substr(0, 64);
  return files;
}

// The first difference between a directory archive's sidecar and its files, "" when none.
inline std::string directory_sidecar_difference(const std::filesystem::path& directory, const std::filesystem::path& sidecar) {
  std::ifstream in(sidecar);
  auto expected = sha256_lines_by_path({std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()});
  auto actual = sha256_lines_by_path(directory_sha256_lines(directory));
  for (const auto& [path, hex] : expected) {
    auto found = actual.find(path);
    if (found == actual.end()) return path + " is listed in the sidecar but missing from the archive";
    if (found->second != hex) return path + " changed after the sidecar was written (SHA-256 " + found->second + ", sidecar " + hex + ")";
  }
  for (const auto& [path, hex] : actual)
    if (!expected.count(path)) return path + " is in the archive but not in the sidecar";
  return "";
}

inline step_result hygiene_step(const std::string& name, bool ok, std::string expected, std::string actual,
                                std::string message) {
  step_result step;
  step.name = name;
  step.kind = "hygiene";
  step.result = ok ? outcome::passed : outcome::failed;
  step.expected = std::move(expected);
  step.actual = std::move(actual);
  step.message = std::move(message);
  return step;
}

}  // namespace detail

/// Size, age, file mode and SHA-256 sidecar of one backup.
inline std::vector<step_result> check_backup_file(const backup_info& backup, const hygiene_spec& spec) {
  std::vector<step_result> steps;
  steps.push_back(detail::hygiene_step(
      "backup size", backup.size >= spec.min_size_bytes, ">= " + std::to_string(spec.min_size_bytes) + " bytes",
      std::to_string(backup.size) + " bytes",
      backup.size >= spec.min_size_bytes
          ? std::to_string(backup.size) + " bytes"
          : backup.path.filename().string() + " is " + std::to_string(backup.size) + " bytes, under the minimum of " +
                std::to_string(spec.min_size_bytes) + ": an empty or failed dump?"));

  if (spec.max_age_hours) {
    double age = std::difftime(std::time(nullptr), backup.taken_at()) / 3600.0;
    bool fresh = age <= *spec.max_age_hours;
    steps.push_back(detail::hygiene_step("backup age", fresh, "<= " + detail::hours_text(*spec.max_age_hours),
                                         detail::hours_text(age),
                                         fresh ? "taken " + detail::hours_text(age) + " ago"
                                               : "the newest backup is " + detail::hours_text(age) + " old, over " +
                                                     detail::hours_text(*spec.max_age_hours)));
  }

  if (spec.private_mode) {
    auto perms = std::filesystem::status(backup.path).permissions();
    bool exposed = (perms & (std::filesystem::perms::group_read | std::filesystem::perms::others_read)) !=
                   std::filesystem::perms::none;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(perms));
    steps.push_back(detail::hygiene_step("backup file mode", !exposed, "not readable by group or others", mode,
                                         exposed ? std::string("mode ") + mode + " lets group or others read the backup"
                                                 : std::string("mode ") + mode));
  }

  auto sidecar = backup.path.string() + ".sha256";
  bool has_sidecar = std::filesystem::is_regular_file(sidecar);
  if (spec.sha256_sidecar == "required" && !has_sidecar) {
    steps.push_back(detail::hygiene_step("backup sha256", false, "a " + std::filesystem::path(sidecar).filename().string() + " sidecar",
                                         "none", "no SHA-256 sidecar " + sidecar));
  } else if (spec.sha256_sidecar != "ignore" && has_sidecar && std::filesystem::is_directory(backup.path)) {
    auto difference = detail::directory_sidecar_difference(backup.path, sidecar);
    steps.push_back(detail::hygiene_step("backup sha256", difference.empty(), "every file as in the sidecar",
                                         difference.empty() ? "as in the sidecar" : difference,
                                         difference.empty() ? "every file matches " + std::filesystem::path(sidecar).filename().string()
                                                            : difference));
  } else if (spec.sha256_sidecar != "ignore" && has_sidecar) {
    std::ifstream in(sidecar);
    std::string expected;
    in >> expected;  // "HEX" or sha256sum's "HEX  NAME"
    std::transform(expected.begin(), expected.end(), expected.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string actual = backup.sha256.empty() ? sha256_file(backup.path) : backup.sha256;
    steps.push_back(detail::hygiene_step("backup sha256", actual == expected, expected, actual,
                                         actual == expected ? "matches " + std::filesystem::path(sidecar).filename().string()
                                                            : "SHA-256 " + actual + " does not match the sidecar's " + expected +
                                                                  ": the file changed after it was written"));
  }
  return steps;
}

/// Count, oldest age and largest gap over every backup in a directory (newest first).
inline std::vector<step_result> check_retention(const std::vector<backup_info>& backups, const retention_spec& spec) {
  std::vector<step_result> steps;
  if (spec.min_count) {
    int count = static_cast<int>(backups.size());
    steps.push_back(detail::hygiene_step("retention count", count >= *spec.min_count, ">= " + std::to_string(*spec.min_count),
                                         std::to_string(count), std::to_string(count) + " backups kept"));
  }
  std::vector<std::time_t> times;
  for (const auto& backup : backups) times.push_back(backup.taken_at());
  std::sort(times.begin(), times.end());
  if (spec.min_oldest_days) {
    double days = times.empty() ? 0 : std::difftime(std::time(nullptr), times.front()) / 86400.0;
    char text[32];
    std::snprintf(text, sizeof text, "%.1f days", days);
    steps.push_back(detail::hygiene_step("retention oldest", days >= *spec.min_oldest_days,
                                         ">= " + std::to_string(*spec.min_oldest_days).substr(0, 5) + " days", text,
                                         std::string("the oldest backup is ") + text + " old"));
  }
  if (spec.max_gap_hours) {
    double largest = 0;
    std::time_t gap_end = 0;
    for (std::size_t index = 1; index < times.size(); ++index) {
      double gap = std::difftime(times[index], times[index - 1]) / 3600.0;
      if (gap > largest) largest = gap, gap_end = times[index];
    }
    bool ok = largest <= *spec.max_gap_hours;
    steps.push_back(detail::hygiene_step("retention gaps", ok, "<= " + detail::hours_text(*spec.max_gap_hours),
                                         detail::hours_text(largest),
                                         ok ? "largest gap " + detail::hours_text(largest)
                                            : "a gap of " + detail::hours_text(largest) + " before the backup of " + detail::iso8601_utc(gap_end) +
                                                  ": backups went missing"));
  }
  return steps;
}

/// The checks that need no server, over located backups: each file's size, age, mode and
/// sidecar (named per file in a set of several), then the directory's retention. Shared by
/// drills, `pgdrill verify` and the GoogleTest harness.
inline std::vector<step_result> verify_backups(const located_backups& found, const hygiene_spec& spec) {
  std::vector<step_result> steps;
  for (const auto& backup : found.backups)
    for (auto& check : check_backup_file(backup, spec)) {
      if (found.backups.size() > 1) check.name += " " + backup.path.filename().string();
      steps.push_back(std::move(check));
    }
  for (auto& check : check_retention(found.listing, spec.retention)) steps.push_back(std::move(check));
  return steps;
}

}  // namespace pgdrill
