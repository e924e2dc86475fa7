// UTC timestamps: ISO 8601 for reports, logs and file names, and the timestamps in backups' names.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <regex>
#include <string>

namespace pgdrill::detail {

inline std::string iso8601_utc(std::time_t when) {
  char text[32];
  std::tm parts{};
  ::gmtime_r(&when, &parts);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

inline std::string iso8601_utc_millis() {
  auto now = std::chrono::system_clock::now();
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::string text = iso8601_utc(std::chrono::system_clock::to_time_t(now));
  char fraction[8];
  std::snprintf(fraction, sizeof fraction, ".%03lldZ", static_cast<long long>(millis));
  return text.substr(0, text.size() - 1) + fraction;
}

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

}  // namespace pgdrill::detail

namespace pgdrill {

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

}  // namespace pgdrill
