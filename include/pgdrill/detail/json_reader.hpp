// Strict reading of one JSON object: typed getters that name the JSON path, and unknown keys as errors.
#pragma once

#include <initializer_list>
#include <cmath>
#include <limits>
#include <optional>  // optional keys
#include <type_traits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pgdrill/error.hpp>

namespace pgdrill::detail {

inline const char* json_type_name(const nlohmann::json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

template <class T>
struct json_kind;
template <>
struct json_kind<std::string> {
  static bool accepts(const nlohmann::json& v) { return v.is_string(); }
  static constexpr const char* name = "a string";
};
// Integers must fit their type: a value past it is an error, never wrapped (18446744073709551615
// read as a long long is -1, and a "min" of -1 passes anything).
template <>
struct json_kind<long long> {
  static bool accepts(const nlohmann::json& v) { return v.is_number_integer(); }
  static bool fits(const nlohmann::json& v) {
    return !v.is_number_unsigned() || v.get<unsigned long long>() <= static_cast<unsigned long long>(std::numeric_limits<long long>::max());
  }
  static constexpr const char* name = "an integer";
};
template <>
struct json_kind<int> : json_kind<long long> {
  static bool fits(const nlohmann::json& v) {
    if (!json_kind<long long>::fits(v)) return false;
    auto number = v.get<long long>();
    return number >= std::numeric_limits<int>::min() && number <= std::numeric_limits<int>::max();
  }
};
template <>
struct json_kind<double> {
  static bool accepts(const nlohmann::json& v) { return v.is_number(); }
  static bool fits(const nlohmann::json& v) { return std::isfinite(v.get<double>()); }
  static constexpr const char* name = "a number";
};
template <>
struct json_kind<bool> {
  static bool accepts(const nlohmann::json& v) { return v.is_boolean(); }
  static constexpr const char* name = "a boolean";
};

/// Reads one object whose keys are declared up front: an unknown key is reported before
/// anything else (so a typo'd required key reads "unknown key", not "missing"). Every error
/// names the source and the JSON pointer, e.g. "demo.json: at /backup/patern: unknown key".
class json_reader {
 public:
  /// `known` lists the keys allowed here; nullptr (with `any_key`) accepts every key.
  json_reader(const nlohmann::json& value, std::string pointer, std::string source,
              std::initializer_list<const char*> known)
      : value_(value), pointer_(std::move(pointer)), source_(std::move(source)) {
    if (!value_.is_object()) fail(pointer_, std::string("expected an object, got ") + json_type_name(value_));
    if (known.size() == 0) return;  // free-form object (e.g. server settings)
    std::string list;
    for (const char* key : known) list += (list.empty() ? "" : ", ") + std::string(key);
    for (const auto& item : value_.items()) {
      bool allowed = false;
      for (const char* key : known) allowed |= item.key() == key;
      if (!allowed) fail(pointer_of(item.key()), "unknown key '" + item.key() + "' (known here: " + list + ")");
    }
  }

  bool has(const std::string& key) const { return value_.contains(key); }
  const std::string& pointer() const { return pointer_; }
  const std::string& source() const { return source_; }
  const nlohmann::json& value() const { return value_; }
  std::string pointer_of(const std::string& key) const { return pointer_ + "/" + key; }

  template <class T>
  std::optional<T> optional(const std::string& key) const {
    if (!value_.contains(key)) return std::nullopt;
    const auto& item = value_.at(key);
    if (!json_kind<T>::accepts(item))
      fail(pointer_of(key), std::string("expected ") + json_kind<T>::name + ", got " + json_type_name(item));
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
      if (!json_kind<T>::fits(item)) fail(pointer_of(key), "out of range: " + item.dump());
    return item.get<T>();
  }

  template <class T>
  T required(const std::string& key) const {
    if (!value_.contains(key)) fail(pointer_of(key), "missing required key");
    return *optional<T>(key);
  }

  /// An array of strings (empty when absent).
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> values;
    const auto& items = raw(key);
    if (items.is_null()) return values;
    if (!items.is_array()) fail(pointer_of(key), std::string("expected an array of strings, got ") + json_type_name(items));
    for (std::size_t index = 0; index < items.size(); ++index) {
      if (!items[index].is_string())
        fail(pointer_of(key) + "/" + std::to_string(index),
             std::string("expected a string, got ") + json_type_name(items[index]));
      values.push_back(items[index].get<std::string>());
    }
    return values;
  }

  /// The raw value of a key; null when absent.
  const nlohmann::json& raw(const std::string& key) const {
    static const nlohmann::json absent;
    return value_.contains(key) ? value_.at(key) : absent;
  }

  /// The nested object at `key`, with its own known keys.
  json_reader object(const std::string& key, std::initializer_list<const char*> known) const {
    return json_reader(raw(key), pointer_of(key), source_, known);
  }

  /// One of a fixed set of strings.
  std::string one_of(const std::string& key, std::initializer_list<const char*> choices, std::string fallback) const {
    auto value = optional<std::string>(key);
    if (!value) return fallback;
    std::string list;
    for (const char* choice : choices) {
      if (*value == choice) return *value;
      list += (list.empty() ? "" : ", ") + std::string(choice);
    }
    fail(pointer_of(key), "'" + *value + "' is not one of: " + list);
  }

  [[noreturn]] void fail(const std::string& where, const std::string& message) const {
    throw usage_error(source_ + ": at " + (where.empty() ? "/" : where) + ": " + message);
  }

 private:
  const nlohmann::json& value_;
  std::string pointer_;
  std::string source_;
};

}  // namespace pgdrill::detail
