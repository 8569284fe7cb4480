#pragma once
#include <boost/json.hpp>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace al::testing {

// Validates a JSON value against the subset of JSON Schema the event schemas in docs/events use:
// type (name or list), const, enum, required, properties, additionalProperties: false, items,
// minimum, maximum, minLength, pattern. Returns the problems found, each with its JSON path.
class JsonSchema {
 public:
  explicit JsonSchema(boost::json::value schema) : schema_(std::move(schema)) {}
  static JsonSchema load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read schema " + path);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return JsonSchema(boost::json::parse(text));
  }

  std::vector<std::string> validate(const boost::json::value& v) const {
    std::vector<std::string> errors;
    check(schema_, v, "$", errors);
    return errors;
  }

 private:
  static bool has_type(const boost::json::value& v, std::string_view type) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_bool();
    if (type == "null") return v.is_null();
    if (type == "integer") return v.is_int64() || v.is_uint64();
    if (type == "number") return v.is_number();
    return false;
  }
  static double number(const boost::json::value& v) { return v.to_number<double>(); }

  static void check(const boost::json::value& s, const boost::json::value& v, const std::string& path,
                    std::vector<std::string>& errors) {
    const auto& schema = s.as_object();
    if (auto* t = schema.if_contains("type")) {
      bool ok = false;
      if (t->is_string()) ok = has_type(v, t->as_string());
      else for (const auto& one : t->as_array()) ok = ok || has_type(v, one.as_string());
      if (!ok) {
        errors.push_back(path + ": wrong type " + boost::json::serialize(*t) + " for " + boost::json::serialize(v).substr(0, 80));
        return;
      }
    }
    if (auto* c = schema.if_contains("const"); c && *c != v)
      errors.push_back(path + ": expected " + boost::json::serialize(*c) + ", got " + boost::json::serialize(v));
    if (auto* e = schema.if_contains("enum")) {
      bool found = false;
      for (const auto& option : e->as_array()) found = found || option == v;
      if (!found) errors.push_back(path + ": " + boost::json::serialize(v) + " not in " + boost::json::serialize(*e));
    }
    if (v.is_string()) {
      if (auto* m = schema.if_contains("minLength"); m && v.as_string().size() < static_cast<std::size_t>(m->to_number<long long>()))
        errors.push_back(path + ": shorter than minLength");
      if (auto* p = schema.if_contains("pattern")) {
        std::regex re(std::string(p->as_string()));
        if (!std::regex_search(std::string(v.as_string()), re))
          errors.push_back(path + ": \"" + std::string(v.as_string()).substr(0, 80) + "\" does not match " + std::string(p->as_string()));
      }
    }
    if (v.is_number()) {
      if (auto* m = schema.if_contains("minimum"); m && number(v) < number(*m)) errors.push_back(path + ": below minimum");
      if (auto* m = schema.if_contains("maximum"); m && number(v) > number(*m)) errors.push_back(path + ": above maximum");
    }
    if (v.is_object()) {
      const auto& o = v.as_object();
      if (auto* r = schema.if_contains("required"))
        for (const auto& key : r->as_array())
          if (!o.contains(key.as_string())) errors.push_back(path + ": missing " + std::string(key.as_string()));
      const auto* props = schema.if_contains("properties");
      for (const auto& [key, value] : o) {
        const boost::json::value* sub = props ? props->as_object().if_contains(key) : nullptr;
        if (sub) check(*sub, value, path + "." + std::string(key), errors);
        else if (auto* ap = schema.if_contains("additionalProperties"); ap && ap->is_bool() && !ap->as_bool())
          errors.push_back(path + ": unexpected property " + std::string(key));
      }
    }
    if (v.is_array()) {
      if (auto* items = schema.if_contains("items")) {
        std::size_t i = 0;
        for (const auto& item : v.as_array()) check(*items, item, path + "[" + std::to_string(i++) + "]", errors);
      }
    }
  }

  boost::json::value schema_;
};

}  // namespace al::testing
