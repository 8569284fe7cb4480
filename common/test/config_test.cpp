#include "common/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using al::Config;
using al::ConfigError;
using Env = std::map<std::string, std::string>;
using Args = std::vector<std::string>;

std::vector<al::ConfigEntry> schema() {
  return {
      {"http.port", "8080", "Port to listen on", {"PORT"}, false},
      {"http.address", "127.0.0.1", "Address to bind", {}, false},
      {"log.level", "info", "Log level", {}, false},
      {"feature.enabled", "false", "A boolean switch", {}, false},
      {"db.path", "", "Database file", {"DATABASE_PATH", "DB_FILE"}, false},
      {"rate-limit.burst", "10", "Burst size", {}, false},
      {"auth.secret", "", "Signing secret", {}, true},
  };
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char pattern[] = "/tmp/al_config_test_XXXXXX";
    int fd = mkstemp(pattern);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    close(fd);
    path_ = pattern;
    std::ofstream out(path_);
    out << content;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Config, DefaultsWhenNothingIsGiven) {
  Config c(schema());
  c.load({}, {});
  EXPECT_EQ(c.get("http.port"), "8080");
  EXPECT_EQ(c.get_int("http.port"), 8080);
  EXPECT_EQ(c.get("db.path"), "");
  EXPECT_FALSE(c.get_bool("feature.enabled"));
  EXPECT_EQ(c.source("http.port"), "default");
  EXPECT_EQ(c.source("db.path"), "default");
}

TEST(Config, LayeringDefaultsFileEnvFlags) {
  TempFile file(
      "# a comment\n"
      "\n"
      "http.port = 9000\n"
      "  log.level=debug  \n"
      "http.address = 0.0.0.0\n"
      "rate-limit.burst = 50\n");
  Config c(schema());
  c.load({"--config", file.path(), "--http.address=10.0.0.1"},
         {{"AGENTLANCER_HTTP_PORT", "9100"}, {"AGENTLANCER_HTTP_ADDRESS", "192.168.1.1"},
          {"UNRELATED", "x"}});
  EXPECT_EQ(c.get("feature.enabled"), "false");
  EXPECT_EQ(c.source("feature.enabled"), "default");
  EXPECT_EQ(c.get("log.level"), "debug");  // file over default, value trimmed
  EXPECT_EQ(c.source("log.level"), "file");
  EXPECT_EQ(c.get_int("rate-limit.burst"), 50);
  EXPECT_EQ(c.get("http.port"), "9100");  // env over file
  EXPECT_EQ(c.source("http.port"), "env");
  EXPECT_EQ(c.get("http.address"), "10.0.0.1");  // flag over env over file
  EXPECT_EQ(c.source("http.address"), "flag");
}

TEST(Config, ConfigFileFromEnvironment) {
  TempFile file("log.level = warn\n");
  Config c(schema());
  c.load({}, {{"AGENTLANCER_CONFIG", file.path()}});
  EXPECT_EQ(c.get("log.level"), "warn");
  EXPECT_EQ(c.source("log.level"), "file");
}

TEST(Config, ConfigFlagOverridesConfigEnvironment) {
  TempFile a("log.level = warn\n");
  TempFile b("log.level = error\n");
  Config c(schema());
  c.load({"--config=" + b.path()}, {{"AGENTLANCER_CONFIG", a.path()}});
  EXPECT_EQ(c.get("log.level"), "error");
}

TEST(Config, FlagForms) {
  Config c(schema());
  c.load({"--http.port=1234", "--log.level", "debug", "--http.address", "::1", "--db.path="}, {});
  EXPECT_EQ(c.get_int("http.port"), 1234);
  EXPECT_EQ(c.get("log.level"), "debug");
  EXPECT_EQ(c.get("http.address"), "::1");
  EXPECT_EQ(c.get("db.path"), "");  // --key= sets an empty value
  EXPECT_EQ(c.source("db.path"), "flag");
}

TEST(Config, ValueContainingEquals) {
  Config c(schema());
  c.load({"--db.path=file:x?mode=ro"}, {});
  EXPECT_EQ(c.get("db.path"), "file:x?mode=ro");
}

TEST(Config, BooleanFlagWithoutValue) {
  {
    Config c(schema());
    c.load({"--feature.enabled"}, {});  // last argument
    EXPECT_TRUE(c.get_bool("feature.enabled"));
    EXPECT_EQ(c.get("feature.enabled"), "true");
  }
  {
    Config c(schema());
    c.load({"--feature.enabled", "--log.level", "warn"}, {});  // followed by another flag
    EXPECT_TRUE(c.get_bool("feature.enabled"));
    EXPECT_EQ(c.get("log.level"), "warn");
  }
  {
    Config c(schema());
    c.load({"--feature.enabled", "false"}, {});  // an explicit value is taken as the value
    EXPECT_FALSE(c.get_bool("feature.enabled"));
  }
}

TEST(Config, NegativeNumberIsAFlagValue) {
  Config c(schema());
  c.load({"--rate-limit.burst", "-5"}, {});
  EXPECT_EQ(c.get_int("rate-limit.burst"), -5);
}

TEST(Config, PortAlias) {
  {
    Config c(schema());
    c.load({"--port", "7001"}, {});
    EXPECT_EQ(c.get_int("http.port"), 7001);
    EXPECT_EQ(c.source("http.port"), "flag");
  }
  {
    Config c(schema());
    c.load({"--port=7002"}, {{"PORT", "1"}, {"AGENTLANCER_HTTP_PORT", "2"}});
    EXPECT_EQ(c.get_int("http.port"), 7002);
  }
}

TEST(Config, ExtraEnvAliasesAndDerivedNames) {
  {
    Config c(schema());
    c.load({}, {{"PORT", "5000"}});
    EXPECT_EQ(c.get_int("http.port"), 5000);
    EXPECT_EQ(c.source("http.port"), "env");
  }
  {
    Config c(schema());
    c.load({}, {{"AGENTLANCER_HTTP_PORT", "5001"}});
    EXPECT_EQ(c.get_int("http.port"), 5001);
  }
  {
    // Documented: aliases are checked before the derived name, so the alias wins.
    Config c(schema());
    c.load({}, {{"PORT", "5000"}, {"AGENTLANCER_HTTP_PORT", "5001"}});
    EXPECT_EQ(c.get_int("http.port"), 5000);
  }
  {
    // Aliases in their listed order; the first non-empty one wins.
    Config c(schema());
    c.load({}, {{"DATABASE_PATH", ""}, {"DB_FILE", "/tmp/b.db"}, {"AGENTLANCER_DB_PATH", "/tmp/c.db"}});
    EXPECT_EQ(c.get("db.path"), "/tmp/b.db");
  }
  {
    Config c(schema());
    c.load({}, {{"DATABASE_PATH", "/tmp/a.db"}, {"DB_FILE", "/tmp/b.db"}});
    EXPECT_EQ(c.get("db.path"), "/tmp/a.db");
  }
  {
    // Dashes in keys become underscores.
    Config c(schema());
    c.load({}, {{"AGENTLANCER_RATE_LIMIT_BURST", "77"}});
    EXPECT_EQ(c.get_int("rate-limit.burst"), 77);
  }
}

TEST(Config, EmptyEnvironmentValueIsIgnored) {
  TempFile file("http.port = 9000\n");
  Config c(schema());
  c.load({"--config", file.path()}, {{"AGENTLANCER_HTTP_PORT", ""}, {"PORT", ""}});
  EXPECT_EQ(c.get_int("http.port"), 9000);
  EXPECT_EQ(c.source("http.port"), "file");
}

TEST(Config, EnvName) {
  EXPECT_EQ(Config::env_name("http.port"), "AGENTLANCER_HTTP_PORT");
  EXPECT_EQ(Config::env_name("rate-limit.burst"), "AGENTLANCER_RATE_LIMIT_BURST");
  EXPECT_EQ(Config::env_name("log.level"), "AGENTLANCER_LOG_LEVEL");
}

TEST(Config, UnknownFlagIsAnError) {
  Config c(schema());
  EXPECT_THROW(c.load({"--http.prot=1"}, {}), ConfigError);
  EXPECT_THROW(c.load({"--nope"}, {}), ConfigError);
  try {
    c.load({"--htp.port", "1"}, {});
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--htp.port"), std::string::npos) << e.what();
  }
}

TEST(Config, PositionalArgumentIsAnError) {
  Config c(schema());
  EXPECT_THROW(c.load({"serve"}, {}), ConfigError);
  EXPECT_THROW(c.load({"-p", "1"}, {}), ConfigError);
}

TEST(Config, UnknownKeyInFileIsAnError) {
  TempFile file("http.port = 1\nhttp.prot = 2\n");
  Config c(schema());
  try {
    c.load({"--config", file.path()}, {});
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(file.path() + ":2"), std::string::npos) << what;
    EXPECT_NE(what.find("http.prot"), std::string::npos) << what;
  }
}

TEST(Config, FileLineWithoutEqualsIsAnError) {
  TempFile file("http.port 1\n");
  Config c(schema());
  try {
    c.load({"--config", file.path()}, {});
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(":1: expected key = value"), std::string::npos) << e.what();
  }
}

TEST(Config, MissingFileIsAnError) {
  Config c(schema());
  EXPECT_THROW(c.load({"--config", "/nonexistent/dir/agentlancer.conf"}, {}), ConfigError);
  EXPECT_THROW(c.load({}, {{"AGENTLANCER_CONFIG", "/nonexistent/x.conf"}}), ConfigError);
}

TEST(Config, UnknownEnvironmentVariablesAreIgnored) {
  Config c(schema());
  EXPECT_NO_THROW(c.load({}, {{"AGENTLANCER_NOT_A_KEY", "1"}}));
  EXPECT_EQ(c.source("http.port"), "default");
}

TEST(Config, GetIntErrors) {
  Config c(schema());
  c.load({"--http.port=abc", "--rate-limit.burst=12abc", "--log.level="}, {});
  EXPECT_THROW(c.get_int("http.port"), ConfigError);
  EXPECT_THROW(c.get_int("rate-limit.burst"), ConfigError);
  EXPECT_THROW(c.get_int("log.level"), ConfigError);  // empty
  c.set("http.port", "99999999999999999999999");     // out of range
  EXPECT_THROW(c.get_int("http.port"), ConfigError);
  try {
    c.set("http.port", "x1");
    c.get_int("http.port");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "http.port must be an integer, got \"x1\"");
  }
  EXPECT_THROW(c.get_int("no.such.key"), ConfigError);
}

TEST(Config, GetBoolValues) {
  Config c(schema());
  for (const char* t : {"true", "1", "yes", "on"}) {
    c.set("feature.enabled", t);
    EXPECT_TRUE(c.get_bool("feature.enabled")) << t;
  }
  for (const char* f : {"false", "0", "no", "off"}) {
    c.set("feature.enabled", f);
    EXPECT_FALSE(c.get_bool("feature.enabled")) << f;
  }
  for (const char* bad : {"TRUE", "True", "maybe", "", "2", " true"}) {
    c.set("feature.enabled", bad);
    EXPECT_THROW(c.get_bool("feature.enabled"), ConfigError) << bad;
  }
}

TEST(Config, SetAndGetUnknown) {
  Config c(schema());
  c.set("log.level", "error");
  EXPECT_EQ(c.get("log.level"), "error");
  EXPECT_EQ(c.source("log.level"), "set");
  EXPECT_THROW(c.set("nope", "1"), ConfigError);
  EXPECT_THROW(c.get("nope"), ConfigError);
  // source() of an unknown key throws too (std::out_of_range, not ConfigError).
  EXPECT_ANY_THROW(c.source("nope"));
}

TEST(Config, UnknownFlagAppliesNothing) {
  // Flags are validated before any layer is applied, so an unknown flag changes nothing.
  Config c(schema());
  EXPECT_THROW(c.load({"--log.level=debug", "--bogus=1"}, {{"AGENTLANCER_HTTP_PORT", "1"}}),
               ConfigError);
  EXPECT_EQ(c.get("log.level"), "info");
  EXPECT_EQ(c.get("http.port"), "8080");
}

TEST(Config, MarkdownTableListsEveryKey) {
  Config c(schema());
  std::string table = c.markdown_table();
  EXPECT_EQ(table.rfind("| key | flag | environment | default | description |\n|---|---|---|---|---|\n", 0),
            0u);
  for (const auto& e : schema()) {
    EXPECT_NE(table.find("| `" + e.key + "` | `--" + e.key + "` |"), std::string::npos) << e.key;
    EXPECT_NE(table.find("`" + Config::env_name(e.key) + "`"), std::string::npos) << e.key;
    EXPECT_NE(table.find(e.description), std::string::npos) << e.key;
  }
  EXPECT_NE(table.find("`PORT`, `AGENTLANCER_HTTP_PORT`"), std::string::npos);
  EXPECT_NE(table.find("`DATABASE_PATH`, `DB_FILE`, `AGENTLANCER_DB_PATH`"), std::string::npos);
  EXPECT_NE(table.find("| `8080` |"), std::string::npos);
  EXPECT_NE(table.find("| (empty) | Database file |"), std::string::npos);
  // One header, one separator, one row per key.
  EXPECT_EQ(static_cast<std::size_t>(std::count(table.begin(), table.end(), '\n')), schema().size() + 2);
}

TEST(Config, MarkdownTableShowsDefaultsNotLoadedValues) {
  Config c(schema());
  c.load({"--auth.secret=super-secret-value", "--http.port=1"}, {});
  std::string table = c.markdown_table();
  EXPECT_EQ(table.find("super-secret-value"), std::string::npos);
  EXPECT_NE(table.find("| `8080` |"), std::string::npos);
}

TEST(Config, ProcessEnvironmentReadsEnviron) {
  ASSERT_EQ(setenv("AL_CONFIG_TEST_VAR", "a=b", 1), 0);
  auto env = Config::process_environment();
  EXPECT_EQ(env["AL_CONFIG_TEST_VAR"], "a=b");  // split at the first '='
  unsetenv("AL_CONFIG_TEST_VAR");
}

}  // namespace
