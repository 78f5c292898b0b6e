// The TOML side of scenario files (private to scenarios/): a Reader that reads typed fields by dotted
// path, checks their ranges and remembers which keys were read (so unknown keys are errors); a
// Writer that writes the same fields back (the resolved scenario); command-line overrides; arrays
// of tables. scenario_fields.h declares the fields once, in Fields(), for both.
#pragma once
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "codecs/status.h"
#include "splitnets/transfer.h"

namespace edgebed::toml_fields {

inline std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Reads typed fields by dotted path, checks ranges, remembers which keys were read.
class Reader {
 public:
  explicit Reader(const toml::table& root) : root_(root) {}

  Status Str(const std::string& path, std::string* out, const std::vector<std::string>& allowed = {}) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    auto v = node.value<std::string>();
    if (!v || !node.is_string())
      return Status::InvalidArgument(path + " must be a string");
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), *v) == allowed.end())
      return Status::InvalidArgument(path + " = '" + *v + "' is not allowed; allowed: " + Join(allowed));
    *out = *v;
    return Status::Ok();
  }

  template <typename T>
  Status Int(const std::string& path, T* out, int64_t lo, int64_t hi) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    if (!node.is_integer())
      return Status::InvalidArgument(path + " must be an integer in [" + std::to_string(lo) + ", " +
                                     std::to_string(hi) + "]");
    const int64_t v = *node.value<int64_t>();
    if (v < lo || v > hi)
      return Status::InvalidArgument(path + " = " + std::to_string(v) + " is out of range [" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
    *out = static_cast<T>(v);
    return Status::Ok();
  }

  Status Bool(const std::string& path, bool* out) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    if (!node.is_boolean()) return Status::InvalidArgument(path + " must be true or false");
    *out = *node.value<bool>();
    return Status::Ok();
  }

  // Range (lo, hi] when lo_open, else [lo, hi].
  Status Real(const std::string& path, double* out, double lo, double hi, bool lo_open = false) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    if (!node.is_number()) return Status::InvalidArgument(path + " must be a number");
    const double v = *node.value<double>();
    const bool below = lo_open ? !(v > lo) : !(v >= lo);
    if (!std::isfinite(v) || below || v > hi) {
      std::ostringstream m;
      m << path << " = " << v << " is out of range " << (lo_open ? "(" : "[") << lo << ", " << hi << "]";
      return Status::InvalidArgument(m.str());
    }
    *out = v;
    return Status::Ok();
  }

  // A finite number whose range another part checks (ChannelConfig::Validate).
  Status Number(const std::string& path, double* out) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    if (!node.is_number() || !std::isfinite(*node.value<double>())) return Status::InvalidArgument(path + " must be a finite number");
    *out = *node.value<double>();
    return Status::Ok();
  }

  // Classes as text ("5-9", "0,2,4"), parsed into a sorted list.
  Status Classes(const std::string& path, std::vector<int>* out, int max_class) {
    std::string text;
    EDGEBED_RETURN_IF_ERROR(Str(path, &text));
    if (text.empty()) return Status::Ok();
    auto cls = ParseClasses(text, path, max_class);
    if (!cls.ok()) return cls.status();
    *out = std::move(cls.value());
    return Status::Ok();
  }

  // An array of numbers, each in [lo, hi].
  Status RealArray(const std::string& path, std::vector<double>* out, double lo, double hi) {
    used_.insert(path);
    auto node = root_.at_path(path);
    if (!node) return Status::Ok();
    const auto* arr = node.as_array();
    if (!arr) return Status::InvalidArgument(path + " must be an array of numbers, e.g. [0.25, 0.5, 1.0]");
    std::vector<double> v;
    for (size_t i = 0; i < arr->size(); ++i) {
      auto x = arr->get(i)->value<double>();
      if (!x || !arr->get(i)->is_number() || !std::isfinite(*x) || *x < lo || *x > hi) {
        std::ostringstream m;
        m << path << "[" << i << "] must be a number in [" << lo << ", " << hi << "]";
        return Status::InvalidArgument(m.str());
      }
      v.push_back(*x);
    }
    *out = std::move(v);
    return Status::Ok();
  }

  void MarkUsed(const std::string& path) { used_.insert(path); }

  // The first key in the file that no field reads.
  Status CheckNoUnknown() const { return Walk(root_, ""); }

 private:
  Status Walk(const toml::table& t, const std::string& prefix) const {
    for (const auto& [k, v] : t) {
      const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (used_.count(path)) continue;
      if (v.is_table()) {
        EDGEBED_RETURN_IF_ERROR(Walk(*v.as_table(), path));
        continue;
      }
      return Status::InvalidArgument("unknown field '" + path + "' (misspelt? see scenarios/default.toml)");
    }
    return Status::Ok();
  }
  const toml::table& root_;
  std::set<std::string> used_;
};

inline Status ApplyOverride(toml::table& root, const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status::InvalidArgument("override '" + kv + "' must look like section.field=value");
  std::string path = kv.substr(0, eq), value = kv.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert("v", value);  // a bare word is a string
  }
  toml::table* t = &root;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1) {
    const std::string part = path.substr(start, dot - start);
    auto* child = t->get(part);
    if (!child) child = &t->insert(part, toml::table{}).first->second;
    if (!child->is_table())
      return Status::InvalidArgument("override '" + kv + "': '" + part + "' is not a section");
    t = child->as_table();
  }
  t->insert_or_assign(path.substr(start), *parsed.get("v"));
  return Status::Ok();
}

// Writes the fields Fields declares into a TOML table, at their dotted paths (the resolved scenario).
class Writer {
 public:
  explicit Writer(toml::table* out) : out_(out) {}
  Status Str(const std::string& path, std::string* v, const std::vector<std::string>& = {}) { return Put(path, *v); }
  template <typename T>
  Status Int(const std::string& path, T* v, int64_t, int64_t) { return Put(path, static_cast<int64_t>(*v)); }
  Status Bool(const std::string& path, bool* v) { return Put(path, *v); }
  Status Real(const std::string& path, double* v, double, double, bool = false) { return Put(path, *v); }
  Status Number(const std::string& path, double* v) { return Put(path, *v); }
  Status RealArray(const std::string& path, std::vector<double>* v, double, double) {
    toml::array a;
    for (double x : *v) a.push_back(x);
    return Put(path, std::move(a));
  }
  Status Classes(const std::string& path, std::vector<int>* v, int) { return Put(path, FormatClasses(*v)); }

 private:
  template <typename T>
  Status Put(const std::string& path, T value) {
    toml::table* t = out_;
    size_t start = 0;
    for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1) {
      const std::string part = path.substr(start, dot - start);
      if (!t->contains(part)) t->insert(part, toml::table{});
      t = t->get_as<toml::table>(part);
    }
    t->insert_or_assign(path.substr(start), std::move(value));
    return Status::Ok();
  }
  toml::table* out_;
};

// An array of tables such as [[faults.crash]]: each table is read by `read` with a Reader of its own,
// then checked for unknown keys; errors name the entry ("faults.crash[1].round = ...").
inline Status ReadTableArray(Reader& r, const toml::table& root, const std::string& path, const std::string& example,
                      const std::function<Status(Reader&)>& read) {
  r.MarkUsed(path);
  auto node = root.at_path(path);
  if (!node) return Status::Ok();
  const auto* arr = node.as_array();
  if (!arr) return Status::InvalidArgument(path + " must be an array of " + example + " tables");
  for (size_t i = 0; i < arr->size(); ++i) {
    const auto* t = arr->get(i)->as_table();
    const std::string where = path + "[" + std::to_string(i) + "]";
    if (!t) return Status::InvalidArgument(where + " must be a table " + example);
    Reader sub(*t);
    Status st = read(sub);
    if (!st.ok()) return Status::InvalidArgument(where + "." + st.message());
    st = sub.CheckNoUnknown();  // "unknown field 'key' ..." -> "unknown field 'path[i].key' ..."
    if (!st.ok()) {
      std::string m = st.message();
      const std::string head = "unknown field '";
      if (m.rfind(head, 0) == 0) m.insert(head.size(), where + ".");
      return Status::InvalidArgument(m);
    }
  }
  return Status::Ok();
}

}  // namespace edgebed::toml_fields
