// Backups: find the newest one, and tell what it is from its bytes (not its name).
#pragma once

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>  // optional timestamp from the file name
#include <regex>
#include <string>
#include <vector>

#include <pgdrill/error.hpp>

namespace pgdrill {

enum class backup_format { plain, custom, directory, tar, unknown };
enum class compression { none, gzip, zstd, lz4, bzip2, xz };

inline const char* to_string(backup_format format) {
  switch (format) {
    case backup_format::plain: return "plain";
    case backup_format::custom: return "custom";
    case backup_format::directory: return "directory";
    case backup_format::tar: return "tar";
    case backup_format::unknown: break;
  }
  return "unknown";
}

inline const char* to_string(compression kind) {
  switch (kind) {
    case compression::gzip: return "gzip";
    case compression::zstd: return "zstd";
    case compression::lz4: return "lz4";
    case compression::bzip2: return "bzip2";
    case compression::xz: return "xz";
    case compression::none: break;
  }
  return "none";
}

/// One backup file (or directory archive) and what its bytes say it is.
struct backup_info {
  std::filesystem::path path;
  backup_format format = backup_format::unknown;
  compression compressed = compression::none;
  std::uintmax_t size = 0;  ///< bytes (all files, for a directory archive)
  std::filesystem::file_time_type modified{};
  std::optional<std::time_t> name_time;  ///< timestamp found in the file name (UTC)
  std::string chosen_because;            ///< why it was picked, for the report

  /// When the backup was taken, as far as we can tell: the name's timestamp, else the mtime.
  std::time_t taken_at() const {
    if (name_time) return *name_time;
    auto since = modified - std::filesystem::file_time_type::clock::now() + std::chrono::system_clock::now();
    return std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::system_clock::duration>(since));
  }
};

namespace detail {

inline std::optional<std::time_t> utc_time(int year, int month, int day, int hour, int minute, int second) {
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  return ::timegm(&parts);
}

inline bool starts_with_bytes(const std::string& head, std::initializer_list<unsigned char> magic) {
  if (head.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), head.begin(),
                    [](unsigned char want, char have) { return want == static_cast<unsigned char>(have); });
}

}  // namespace detail

/// The timestamp in a backup's file name: YYYY-MM-DD, YYYYMMDD, optionally followed by a time
/// (YYYYMMDD_HHMMSS, YYYY-MM-DD_HH-MM-SS, ISO 8601 2025-01-01T02:00:00Z). Taken as UTC.
inline std::optional<std::time_t> timestamp_in_name(const std::string& name) {
  static const std::regex pattern(
      R"((?:^|[^0-9])((?:19|20)\d\d)(-?)(\d\d)\2(\d\d)(?:[T_ .-]?(\d\d)[-:]?(\d\d)(?:[-:]?(\d\d))?)?(?:[^0-9]|$))");
  std::smatch match;
  if (!std::regex_search(name, match, pattern)) return std::nullopt;
  auto number = [&](int group) { return match[group].matched ? std::stoi(match[group].str()) : 0; };
  return detail::utc_time(number(1), number(3), number(4), number(5), number(6), number(7));
}

/// Format and compression from the first bytes (or the files, for a directory archive).
inline backup_info inspect_file(const std::filesystem::path& path) {
  std::error_code failure;
  backup_info info;
  info.path = path;
  auto status = std::filesystem::status(path, failure);
  if (failure || !std::filesystem::exists(status))
    throw could_not_verify("backup " + path.string() + " does not exist or cannot be read");
  info.modified = std::filesystem::last_write_time(path, failure);
  info.name_time = timestamp_in_name(path.filename().string());

  if (std::filesystem::is_directory(status)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, failure))
      if (entry.is_regular_file()) info.size += entry.file_size();
    info.format = std::filesystem::exists(path / "toc.dat") ? backup_format::directory : backup_format::unknown;
    return info;
  }
  info.size = std::filesystem::file_size(path, failure);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw could_not_verify("cannot open backup " + path.string() + ": " + std::strerror(errno));
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));

  using detail::starts_with_bytes;
  if (starts_with_bytes(head, {0x1f, 0x8b})) info.compressed = compression::gzip;
  else if (starts_with_bytes(head, {0x28, 0xb5, 0x2f, 0xfd})) info.compressed = compression::zstd;
  else if (starts_with_bytes(head, {0x04, 0x22, 0x4d, 0x18})) info.compressed = compression::lz4;
  else if (starts_with_bytes(head, {'B', 'Z', 'h'})) info.compressed = compression::bzip2;
  else if (starts_with_bytes(head, {0xfd, '7', 'z', 'X', 'Z', 0x00})) info.compressed = compression::xz;

  if (info.compressed != compression::none) {
    info.format = backup_format::unknown;  // known once decompressed (see restore)
  } else if (head.compare(0, 5, "PGDMP") == 0) {
    info.format = backup_format::custom;
  } else if (head.size() >= 262 && head.compare(257, 5, "ustar") == 0) {
    info.format = backup_format::tar;
  } else if (!head.empty() && head.find('\0') == std::string::npos) {
    info.format = backup_format::plain;  // text: pg_dump's plain SQL script
  }
  return info;
}

/// Files in `directory` whose names match the glob, newest first: by the timestamp in the name
/// when every candidate has one, else by modification time.
inline std::vector<backup_info> list_backups(const std::filesystem::path& directory, const std::string& pattern = "*") {
  std::error_code failure;
  if (!std::filesystem::is_directory(directory, failure))
    throw could_not_verify("backup directory " + directory.string() + " does not exist or is not a directory");
  std::vector<backup_info> found;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failure)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || ::fnmatch(pattern.c_str(), name.c_str(), 0) != 0) continue;
    found.push_back(inspect_file(entry.path()));
  }
  bool all_named = std::all_of(found.begin(), found.end(), [](const backup_info& b) { return b.name_time.has_value(); });
  std::stable_sort(found.begin(), found.end(), [&](const backup_info& a, const backup_info& b) {
    if (all_named && *a.name_time != *b.name_time) return *a.name_time > *b.name_time;
    if (a.modified != b.modified) return a.modified > b.modified;
    return a.path.filename() > b.path.filename();
  });
  for (auto& backup : found)
    backup.chosen_because = all_named ? "newest by the timestamp in its name" : "newest by modification time";
  return found;
}

/// The newest backup in `directory` matching `pattern`; could_not_verify when there is none.
inline backup_info find_latest(const std::filesystem::path& directory, const std::string& pattern = "*") {
  auto found = list_backups(directory, pattern);
  if (found.empty())
    throw could_not_verify("no backup matching '" + pattern + "' in " + directory.string());
  auto latest = found.front();
  latest.chosen_because += " (of " + std::to_string(found.size()) + " matching '" + pattern + "')";
  return latest;
}

}  // namespace pgdrill
