// Numbers and durations as people read them in reports: "1.23s", "48.6 KiB", "3d 4h", "2.5h".
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
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
/// `text` without the line breaks and spaces it ends with (a tool's output, a server's message).
inline std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

inline std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string text;
  for (std::size_t index = 0; index < items.size(); ++index) text += (index ? separator : "") + items[index];
  return text;
}

/// `text` made safe for any report: bytes that are not UTF-8 (a LATIN1 server's error, a
/// damaged dump's line) and control characters other than tab and newline become U+FFFD.
inline std::string printable(std::string_view text) {
  static const char replacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    auto byte = static_cast<unsigned char>(text[at]);
    std::size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : (byte >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && at + length <= text.size();
    for (std::size_t next = 1; valid && next < length; ++next) valid = (static_cast<unsigned char>(text[at + next]) >> 6) == 0x2;
    if (valid && length > 1) {  // no overlong forms, surrogates or code points past U+10FFFF
      unsigned code = byte & (0x7F >> length);
      for (std::size_t next = 1; next < length; ++next) code = (code << 6) | (static_cast<unsigned char>(text[at + next]) & 0x3F);
      static const unsigned smallest[] = {0, 0, 0x80, 0x800, 0x10000};
      valid = code >= smallest[length] && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    }
    if (valid && length == 1 && byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r') valid = false;
    if (valid && byte == 0x7F) valid = false;
    if (valid) out.append(text.substr(at, length));
    else out += replacement;
    at += valid ? length : 1;
  }
  return out;
}

}  // namespace pgdrill::detail
