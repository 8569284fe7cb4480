#pragma once
// Running the copy_paste_curl / monitor_curl commands the API hands out, as an agent would.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <string>
#include <string_view>

namespace al::testing {

inline std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// Runs a copy_paste_curl/monitor_curl through /bin/sh (popen) after replacing the key placeholder
// with the real key; returns the HTTP status curl saw (0 when it could not connect). An empty
// placeholder means a public curl: it must carry no key placeholder at all.
inline int run_curl(const std::string& curl, const std::string& placeholder, const std::string& key) {
  EXPECT_EQ(curl.rfind("curl ", 0), 0u) << curl;
  std::string cmd = curl;
  if (placeholder.empty()) {
    EXPECT_EQ(curl.find("_AGENT_API_KEY>"), std::string::npos) << curl;
  } else {
    EXPECT_NE(curl.find(placeholder), std::string::npos) << curl;
    cmd = replace_all(curl, placeholder, key);
  }
  // Options go right after `curl` so that a trailing shell comment in the command cannot swallow them.
  cmd = "curl -o /dev/null -w '%{http_code}' " + cmd.substr(5);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "popen failed";
    return -1;
  }
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  try {
    return std::stoi(out.substr(out.size() >= 3 ? out.size() - 3 : 0));
  } catch (...) {
    ADD_FAILURE() << "curl output: " << out << "\ncommand: " << cmd;
    return -1;
  }
}

// The JSON payload of `-d '…'` in a curl command (shell single quotes undone); null when none.
inline boost::json::value curl_payload(const std::string& curl) {
  auto start = curl.find("-d '");
  auto end = curl.rfind('\'');
  if (start == std::string::npos || end == std::string::npos || end <= start + 4) return nullptr;
  std::string raw = replace_all(curl.substr(start + 4, end - start - 4), "'\\''", "'");
  boost::system::error_code ec;
  auto v = boost::json::parse(raw, ec);
  if (ec) return nullptr;
  return v;
}

}  // namespace al::testing
