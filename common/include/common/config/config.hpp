#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace al {

struct ConfigEntry {
  std::string key;            // e.g. "http.port"
  std::string default_value;
  std::string description;
  std::vector<std::string> extra_env;  // aliases such as "PORT", checked before the derived name
  bool secret = false;        // never printed
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Layered configuration: defaults < file (--config FILE or AGENTLANCER_CONFIG; "key = value"
// lines) < environment (AGENTLANCER_HTTP_PORT for "http.port", plus aliases) < flags
// (--http.port=8080 or --http.port 8080). Unknown keys are errors, so typos fail fast.
class Config {
 public:
  explicit Config(std::vector<ConfigEntry> schema);

  // `args` excludes the program name and subcommand. `environment` is usually from environ.
  void load(const std::vector<std::string>& args, const std::map<std::string, std::string>& environment);
  void set(const std::string& key, const std::string& value);  // programmatic override (tests)

  const std::string& get(const std::string& key) const;
  long long get_int(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string source(const std::string& key) const;  // default | file | env | flag | set

  static std::string env_name(const std::string& key);
  std::string markdown_table() const;
  static std::map<std::string, std::string> process_environment();

 private:
  const ConfigEntry* find(const std::string& key) const;
  std::vector<ConfigEntry> schema_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> sources_;
};

}  // namespace al
