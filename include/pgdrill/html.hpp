// The history as one self-contained HTML page (`pgdrill report --html`): the latest drill with
// what did not pass first, charts over a dated time axis on which failed and not-verified drills
// are marked with their reason, and every drill with why it did not pass. Inline SVG and CSS only:
// no scripts, nothing fetched.
#pragma once

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>  // a figure a drill did not measure
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/time.hpp>
#include <pgdrill/history.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

namespace detail {

inline std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : printable(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string bytes_or_number(double value, const std::string& unit) {
  if (unit == "bytes") return bytes_text(value);
  char text[48];
  std::snprintf(text, sizeof text, "%.6g %s", value, unit.c_str());
  return text;
}

// The CSS class of a drill's outcome: passed, failed (the backup) or unverified (the drill).
inline const char* outcome_class(int exit_code) { return exit_code == 0 ? "passed" : exit_code == 1 ? "failed" : "unverified"; }

// Why a drill did not pass, in one line: its first stage or check that failed, else the first
// that could not run.
inline std::string reason_of(const history_entry& entry) {
  for (const char* wanted : {"failed", "error"})
    for (const auto& step : entry.steps)
      if (step.result == wanted) return step.name + ": " + step.message;
  return entry.passed() ? "" : "no reason recorded";
}

// One figure over the drills: a value per drill, none where that drill did not measure it (a
// gap in the line, never a 0).
struct chart_series {
  std::string name;
  std::vector<std::optional<double>> values;
};

// The charts' shared time axis: each drill's x coordinate (by when it started; by order when a
// time is unreadable or all are equal) and the dated tick labels.
struct time_axis {
  static constexpr double left = 70, right = 700, height = 200, bottom = 34;
  std::vector<double> x;
  std::vector<std::pair<double, std::string>> ticks;

  explicit time_axis(const std::vector<history_entry>& entries) {
    std::vector<std::time_t> times;
    for (const auto& entry : entries)
      if (auto when = timestamp_in_name(entry.at)) times.push_back(*when);
    bool by_time = times.size() == entries.size() && !times.empty() &&
                   *std::max_element(times.begin(), times.end()) > *std::min_element(times.begin(), times.end());
    double first = by_time ? static_cast<double>(*std::min_element(times.begin(), times.end())) : 0;
    double span = by_time ? static_cast<double>(*std::max_element(times.begin(), times.end())) - first : 0;
    for (std::size_t index = 0; index < entries.size(); ++index) {
      double share = by_time ? (static_cast<double>(times[index]) - first) / span
                     : entries.size() > 1 ? static_cast<double>(index) / static_cast<double>(entries.size() - 1)
                                          : 0.5;
      x.push_back(left + share * (right - left));
    }
    if (!by_time) {  // the drills' own stamps, first and last
      if (!entries.empty()) ticks.emplace_back(x.front(), entries.front().at.substr(0, 10));
      if (entries.size() > 1) ticks.emplace_back(x.back(), entries.back().at.substr(0, 10));
      return;
    }
    const char* format = span < 2 * 86400 ? "%m-%d %H:%M" : "%Y-%m-%d";
    for (int tick = 0; tick <= 4; ++tick) {
      std::time_t when = static_cast<std::time_t>(first + span * tick / 4);
      std::tm utc{};
      gmtime_r(&when, &utc);
      char label[32];
      std::strftime(label, sizeof label, format, &utc);
      ticks.emplace_back(left + (right - left) * tick / 4, label);
    }
  }
};

// A line chart as inline SVG over the time axis. Drills that did not pass are marked by a
// vertical line in their colour whose tooltip gives the date, outcome and reason.
inline std::string svg_chart(const std::string& title, const std::vector<chart_series>& series, const std::string& unit,
                             const std::vector<history_entry>& entries, const time_axis& axis) {
  static const char* palette[] = {"#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#bcbd22", "#7f7f7f"};
  double top = 0;
  for (const auto& line : series)
    for (const auto& value : line.values)
      if (value) top = std::max(top, *value);
  if (top <= 0) top = 1;
  const double height = time_axis::height, legend_rows = static_cast<double>((series.size() + 3) / 4);
  auto y_of = [&](double value) { return height - (height - 10) * value / top; };
  std::ostringstream svg;
  svg << "<figure><figcaption>" << html_escape(title) << "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << time_axis::right + 20 << "\" height=\"" << height + time_axis::bottom + 16 * legend_rows << "\" role=\"img\" aria-label=\""
      << html_escape(title) << "\" font-size=\"11\">"
      << "<line x1=\"" << time_axis::left << "\" y1=\"" << height << "\" x2=\"" << time_axis::right << "\" y2=\"" << height
      << "\" stroke=\"#999\"/><text x=\"0\" y=\"14\">" << html_escape(bytes_or_number(top, unit)) << "</text><text x=\"0\" y=\""
      << height << "\">0</text>";
  for (const auto& [x, label] : axis.ticks)  // the outer labels end at the axis's ends, inside the picture
    svg << "<line x1=\"" << x << "\" y1=\"" << height << "\" x2=\"" << x << "\" y2=\"" << height + 4 << "\" stroke=\"#999\"/><text x=\""
        << x << "\" y=\"" << height + 16 << "\" text-anchor=\""
        << (x <= time_axis::left ? "start" : x >= time_axis::right ? "end" : "middle") << "\">" << html_escape(label) << "</text>";
  for (std::size_t index = 0; index < entries.size(); ++index) {
    const auto& entry = entries[index];
    if (entry.passed()) continue;
    svg << "<line class=\"mark " << outcome_class(entry.exit_code) << "\" x1=\"" << axis.x[index] << "\" y1=\"6\" x2=\"" << axis.x[index]
        << "\" y2=\"" << height << "\" stroke-width=\"2\" stroke-dasharray=\"4 3\"><title>" << html_escape(entry.at + " " + entry.outcome + ": " + reason_of(entry))
        << "</title></line>";
  }
  for (std::size_t color = 0; color < series.size(); ++color) {
    const auto& line = series[color];
    const char* stroke = palette[color % 8];
    std::string points;
    auto flush = [&] {  // one polyline per run of measured drills
      if (!points.empty())
        svg << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << stroke << "\" points=\"" << points << "\"><title>"
            << html_escape(line.name) << "</title></polyline>";
      points.clear();
    };
    for (std::size_t index = 0; index < line.values.size(); ++index) {
      if (!line.values[index]) {
        flush();
        continue;
      }
      double y = y_of(*line.values[index]);
      points += std::to_string(axis.x[index]) + "," + std::to_string(y) + " ";
      svg << "<circle cx=\"" << axis.x[index] << "\" cy=\"" << y << "\" r=\"3\" fill=\"" << stroke << "\"><title>"
          << html_escape(entries[index].at + ": " + bytes_or_number(*line.values[index], unit)) << "</title></circle>";
    }
    flush();
    svg << "<text x=\"" << time_axis::left + 160 * static_cast<double>(color % 4) << "\" y=\""
        << height + time_axis::bottom + 16 * static_cast<double>(color / 4) << "\" fill=\"" << stroke << "\">" << html_escape(line.name)
        << "</text>";
  }
  svg << "</svg></figure>\n";
  return svg.str();
}

// The row counts of the tables largest in the latest drill that counted any (at most `shown`),
// each only where a drill counted it.
inline std::vector<chart_series> row_count_series(const std::vector<history_entry>& entries, std::size_t shown, std::size_t& total) {
  std::map<std::string, chart_series> by_table;
  for (std::size_t index = 0; index < entries.size(); ++index)
    for (const auto& [table, rows] : entries[index].tables) {
      auto& line = by_table[table];
      line.name = table;
      line.values.resize(entries.size());
      line.values[index] = static_cast<double>(rows);
    }
  total = by_table.size();
  std::vector<chart_series> series;
  for (auto& [table, line] : by_table) series.push_back(std::move(line));
  auto latest = [](const chart_series& line) {
    for (auto value = line.values.rbegin(); value != line.values.rend(); ++value)
      if (*value) return **value;
    return 0.0;
  };
  std::stable_sort(series.begin(), series.end(), [&](const auto& a, const auto& b) { return latest(a) > latest(b); });
  if (series.size() > shown) series.resize(shown);
  return series;
}

// A table row of cells, each escaped; the cell at `class_at` gets `css_class`.
inline std::string html_row(const std::vector<std::string>& cells, std::size_t class_at = std::string::npos,
                            const std::string& css_class = "") {
  std::string row = "<tr>";
  for (std::size_t index = 0; index < cells.size(); ++index)
    row += (index == class_at ? "<td class=\"" + css_class + "\">" : std::string("<td>")) + html_escape(cells[index]) + "</td>";
  return row + "</tr>";
}

// The latest drill's stages and checks, what did not pass first: from its JSON report when
// given, else from its history line.
inline std::string latest_steps_table(const history_entry& last, const nlohmann::json& report) {
  struct shown_step {
    std::string name, result, message;
  };
  std::vector<shown_step> steps;
  if (report.is_object() && report.contains("checks")) {
    for (const auto* group : {"stages", "checks"})
      for (const auto& step : report[group]) steps.push_back({step.value("name", ""), step.value("result", ""), step.value("message", "")});
  } else {
    for (const auto& step : last.steps) steps.push_back({step.name, step.result, step.message});
  }
  auto rank = [](const std::string& result) { return result == "failed" ? 0 : result == "error" ? 1 : result == "skipped" ? 2 : 3; };
  std::stable_sort(steps.begin(), steps.end(), [&](const auto& a, const auto& b) { return rank(a.result) < rank(b.result); });
  std::string table = "<h3>Checks of the latest drill</h3>\n<table><tr><th>check</th><th>result</th><th>message</th></tr>";
  for (const auto& step : steps) table += html_row({step.name, step.result, step.message}, 1, step.result);
  return table + "</table>\n";
}

}  // namespace detail

/// A single self-contained HTML page of a history (oldest first) and, optionally, the latest
/// drill's JSON report.
inline std::string render_html(const std::vector<history_entry>& entries, const nlohmann::json& latest_report = nullptr) {
  using detail::html_escape;
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>pgdrill report</title><style>"
          "body{font-family:sans-serif;margin:2em;max-width:62em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}"
          ".passed{color:#2a2}.failed{color:#c22;font-weight:bold}.error,.unverified{color:#b60;font-weight:bold}"
          ".skipped{color:#888}line.mark.failed{stroke:#c22}line.mark.unverified{stroke:#e90}"
          ".key span{margin-right:1.5em}</style></head><body>\n<h1>pgdrill report</h1>\n";
  if (entries.empty()) {
    page << "<p>No drills in the history yet.</p>\n</body></html>\n";
    return page.str();
  }
  const auto& last = entries.back();
  page << "<h2>Latest drill: " << html_escape(last.scenario) << " &mdash; <span class=\"" << detail::outcome_class(last.exit_code)
       << "\">" << html_escape(last.outcome) << "</span></h2>\n<table>"
       << detail::html_row({"when", last.at})
       << detail::html_row({"backup", last.backup.empty() ? "none found" : last.backup + " (" +
                                                                  detail::bytes_text(static_cast<double>(last.backup_size)) +
                                                                  ", taken " + last.backup_taken_at + ")"})
       << detail::html_row({"restore", last.restore_seconds ? detail::seconds_text(*last.restore_seconds) : "not completed"});
  if (!last.passed()) page << detail::html_row({"why", detail::reason_of(last)}, 1, detail::outcome_class(last.exit_code));
  page << "</table>\n" << detail::latest_steps_table(last, latest_report);

  detail::time_axis axis(entries);
  detail::chart_series restore{"restore seconds", {}}, size{"backup bytes", {}};
  for (const auto& entry : entries) {
    restore.values.push_back(entry.restore_seconds);
    size.values.push_back(entry.backup_size > 0 ? std::optional<double>(static_cast<double>(entry.backup_size)) : std::nullopt);
  }
  page << "<h2>Over time (" << entries.size() << " drills, " << html_escape(entries.front().at) << " to " << html_escape(last.at)
       << ")</h2>\n<p class=\"key\"><span class=\"failed\">┆ failed drill</span><span class=\"unverified\">┆ drill that could not "
          "verify</span>(hover a mark for its reason; a gap is a drill that did not measure)</p>\n"
       << detail::svg_chart("Restore time", {restore}, "s", entries, axis)
       << detail::svg_chart("Backup size", {size}, "bytes", entries, axis);
  std::size_t tables = 0;
  auto rows = detail::row_count_series(entries, 8, tables);
  if (!rows.empty())
    page << detail::svg_chart(tables > rows.size() ? "Row counts (the " + std::to_string(rows.size()) + " largest of " + std::to_string(tables) + " tables)"
                                                   : std::string("Row counts"),
                              rows, "rows", entries, axis);
  page << "<h2>History</h2>\n<table><tr><th>when</th><th>scenario</th><th>outcome</th><th>restore</th><th>backup size</th>"
          "<th>why it did not pass</th></tr>";
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry)
    page << detail::html_row({entry->at, entry->scenario, entry->outcome,
                              entry->restore_seconds ? detail::seconds_text(*entry->restore_seconds) : "-",
                              entry->backup.empty() ? "-" : detail::bytes_text(static_cast<double>(entry->backup_size)),
                              detail::reason_of(*entry)},
                             2, detail::outcome_class(entry->exit_code));
  page << "</table>\n</body></html>\n";
  return page.str();
}

}  // namespace pgdrill
