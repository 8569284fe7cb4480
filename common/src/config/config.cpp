#include "common/config/config.hpp"

#include <unistd.h>

#include <fstream>

extern char** environ;

namespace al {
namespace {
std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}
}  // namespace

Config::Config(std::vector<ConfigEntry> schema) : schema_(std::move(schema)) {
  for (const auto& e : schema_) {
    values_[e.key] = e.default_value;
    sources_[e.key] = "default";
  }
}

const ConfigEntry* Config::find(const std::string& key) const {
  for (const auto& e : schema_)
    if (e.key == key) return &e;
  return nullptr;
}

std::string Config::env_name(const std::string& key) {
  std::string out = "AGENTLANCER_";
  for (char c : key) out.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

std::map<std::string, std::string> Config::process_environment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) out[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return out;
}

void Config::load(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& environment) {
  // Flags first into a staging map so the file named by --config is known before layering.
  std::map<std::string, std::string> flags;
  std::string config_file;
  if (auto it = environment.find("AGENTLANCER_CONFIG"); it != environment.end()) config_file = it->second;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) throw ConfigError("unexpected argument: " + arg);
    std::string key = arg.substr(2), value;
    auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
      value = args[++i];
    } else {
      value = "true";  // boolean flag
    }
    if (key == "config") {
      config_file = value;
      continue;
    }
    if (key == "port") key = "http.port";  // the documented short form
    if (!find(key)) throw ConfigError("unknown option --" + key);
    flags[key] = value;
  }
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) throw ConfigError("cannot read config file " + config_file);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      line = trim(line);
      if (line.empty() || line[0] == '#') continue;
      auto eq = line.find('=');
      if (eq == std::string::npos)
        throw ConfigError(config_file + ":" + std::to_string(number) + ": expected key = value");
      std::string key = trim(line.substr(0, eq));
      if (!find(key)) throw ConfigError(config_file + ":" + std::to_string(number) + ": unknown key " + key);
      values_[key] = trim(line.substr(eq + 1));
      sources_[key] = "file";
    }
  }
  for (const auto& e : schema_) {
    std::vector<std::string> names = e.extra_env;
    names.push_back(env_name(e.key));
    for (const auto& name : names) {
      if (auto it = environment.find(name); it != environment.end() && !it->second.empty()) {
        values_[e.key] = it->second;
        sources_[e.key] = "env";
        break;
      }
    }
  }
  for (auto& [k, v] : flags) {
    values_[k] = v;
    sources_[k] = "flag";
  }
}

void Config::set(const std::string& key, const std::string& value) {
  if (!find(key)) throw ConfigError("unknown key " + key);
  values_[key] = value;
  sources_[key] = "set";
}

const std::string& Config::get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw ConfigError("unknown key " + key);
  return it->second;
}

long long Config::get_int(const std::string& key) const {
  const std::string& v = get(key);
  try {
    std::size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return n;
  } catch (const std::exception&) {
    throw ConfigError(key + " must be an integer, got \"" + v + "\"");
  }
}

bool Config::get_bool(const std::string& key) const {
  const std::string& v = get(key);
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError(key + " must be true or false, got \"" + v + "\"");
}

std::string Config::source(const std::string& key) const {
  auto it = sources_.find(key);
  if (it == sources_.end()) throw ConfigError("unknown key " + key);
  return it->second;
}

std::string Config::markdown_table() const {
  std::string out = "| key | flag | environment | default | description |\n|---|---|---|---|---|\n";
  for (const auto& e : schema_) {
    std::string env;
    for (const auto& alias : e.extra_env) env += "`" + alias + "`, ";
    env += "`" + env_name(e.key) + "`";
    out += "| `" + e.key + "` | `--" + e.key + "` | " + env + " | " +
           (e.default_value.empty() ? "(empty)" : "`" + e.default_value + "`") + " | " +
           e.description + " |\n";
  }
  return out;
}

}  // namespace al
