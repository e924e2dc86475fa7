// UTC timestamps in ISO 8601, for reports, logs and file names.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
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

}  // namespace pgdrill::detail
