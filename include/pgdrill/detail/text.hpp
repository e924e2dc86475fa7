// Numbers and durations as people read them in reports: "1.23s", "48.6 KiB", "3d 4h", "2.5h".
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace pgdrill::detail {

/// "1.23s".
inline std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2fs", seconds);
  return text;
}

/// "48.6 KiB".
inline std::string bytes_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

/// "3d 4h", "5h 12m", "42s": an age.
inline std::string age_text(double seconds) {
  long long total = static_cast<long long>(seconds < 0 ? 0 : seconds);
  char text[32];
  if (total >= 86400) std::snprintf(text, sizeof text, "%lldd %lldh", total / 86400, total % 86400 / 3600);
  else if (total >= 3600) std::snprintf(text, sizeof text, "%lldh %lldm", total / 3600, total % 3600 / 60);
  else if (total >= 60) std::snprintf(text, sizeof text, "%lldm %llds", total / 60, total % 60);
  else std::snprintf(text, sizeof text, "%llds", total);
  return text;
}

/// "2.5h".
inline std::string hours_text(double hours) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fh", hours);
  return text;
}

/// "a, b, c".
inline std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string text;
  for (std::size_t index = 0; index < items.size(); ++index) text += (index ? separator : "") + items[index];
  return text;
}

}  // namespace pgdrill::detail
