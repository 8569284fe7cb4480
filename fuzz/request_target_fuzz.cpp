// The server's request-target handling, step by step as common/src/http/server.cpp does it
// (Session::on_read): origin-form parsing, the encoded path and the decoded query, the upgrade
// match, the route match (HEAD falling back to the GET route), then the percent-decoding of each
// path parameter. The router holds the
// project's real route table: fuzz/routes.tsv, the output of `agentlancer routes` (building the
// modules themselves needs their databases; ctest fuzz_routes_current keeps the copy current).
//
// Input: "METHOD target" (e.g. "POST /api/agent/threads/thr_1/messages?x=1"); without a space the
// whole input is a GET's target.
#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common/http/router.hpp"
#include "fuzz_check.hpp"

namespace {
namespace bhttp = boost::beast::http;
using al::fuzz::shown;
using al::http::Router;

constexpr const char kRoutesTsv[] =
#include "routes.tsv.inc"
    ;

struct Row {
  bhttp::verb method;
  std::string pattern;
  bool upgrade = false;
};

struct Table {
  Router router;
  std::vector<Row> rows;
  int last_called = -1;  // the row whose handler ran last
};

std::vector<std::string> segments_of(std::string_view path) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) out.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

bool is_placeholder(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

Table& table() {
  static Table* t = [] {
    auto* t = new Table;
    std::string_view rest(kRoutesTsv);
    while (!rest.empty()) {
      std::string_view line = rest.substr(0, rest.find('\n'));
      rest.remove_prefix(std::min(rest.size(), line.size() + 1));
      if (line.empty()) continue;
      std::vector<std::string> fields;
      for (std::size_t pos = 0; pos <= line.size();) {
        std::size_t tab = std::min(line.find('\t', pos), line.size());
        fields.emplace_back(line.substr(pos, tab - pos));
        pos = tab + 1;
      }
      FUZZ_CHECK(fields.size() >= 3, "routes.tsv: " + std::string(line));
      Row row{bhttp::string_to_verb(fields[0]), fields[1], fields.size() > 3 && fields[3] == "upgrade"};
      FUZZ_CHECK(row.method != bhttp::verb::unknown, "routes.tsv: " + std::string(line));
      int index = static_cast<int>(t->rows.size());
      if (row.upgrade) {
        t->router.add_upgrade(row.pattern, al::http::Upgrade{[](const al::http::Request&) { return std::nullopt; },
                                                             [](auto&&...) {}});
      } else {
        t->router.add(row.method, row.pattern,
                      [t, index](const al::http::Request&, al::http::Responder) { t->last_called = index; });
      }
      t->rows.push_back(std::move(row));
    }
    FUZZ_CHECK(t->rows.size() > 10, "routes.tsv looks empty");
    return t;
  }();
  return *t;
}

// The oracle: does `pattern` match `path` segment by segment ("{name}" takes one segment)?
bool pattern_matches(const std::string& pattern, const std::vector<std::string>& path) {
  auto want = segments_of(pattern);
  if (want.size() != path.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (!is_placeholder(want[i]) && want[i] != path[i]) return false;
  return true;
}

void check_match(Table& t, bhttp::verb method, const std::string& path) {
  auto segments = segments_of(path);
  auto match = t.router.match(method, path);
  FUZZ_CHECK(match.status == 200 || match.status == 404 || match.status == 405);
  FUZZ_CHECK((match.handler != nullptr) == (match.status == 200));

  // What the table says: the first plain route of this method that matches, else 405 with the
  // methods of the routes that match the path, in registration order, else 404.
  int expected = -1;
  std::vector<std::string> methods;
  for (std::size_t i = 0; i < t.rows.size() && expected < 0; ++i) {
    const Row& row = t.rows[i];
    if (row.upgrade || !pattern_matches(row.pattern, segments)) continue;
    if (row.method == method) {
      expected = static_cast<int>(i);
    } else {
      std::string name(bhttp::to_string(row.method));
      if (std::find(methods.begin(), methods.end(), name) == methods.end()) methods.push_back(name);
    }
  }
  if (expected >= 0) {
    FUZZ_CHECK(match.status == 200, "path " + shown(path) + " should match " + t.rows[expected].pattern);
    t.last_called = -1;
    (*match.handler)(al::http::Request{}, [](al::http::Response) {});
    FUZZ_CHECK(t.last_called == expected, "path " + shown(path) + " ran the handler of another route");
    FUZZ_CHECK(match.route == t.rows[expected].pattern);
    // The parameters are the path's segments where the pattern has placeholders, in order.
    auto pattern = segments_of(match.route);
    std::size_t next = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
      if (!is_placeholder(pattern[i])) continue;
      FUZZ_CHECK(next < match.params.size(), "too few params for " + match.route);
      FUZZ_CHECK(match.params[next].first == pattern[i].substr(1, pattern[i].size() - 2));
      FUZZ_CHECK(match.params[next].second == segments[i], "param " + shown(match.params[next].second));
      FUZZ_CHECK(!match.params[next].second.empty() && match.params[next].second.find('/') == std::string::npos);
      ++next;
    }
    FUZZ_CHECK(next == match.params.size(), "too many params for " + match.route);
    return;
  }
  if (!methods.empty()) {
    std::string allow;
    for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
    FUZZ_CHECK(match.status == 405, "path " + shown(path) + " exists for " + allow);
    FUZZ_CHECK(match.allow == allow, "allow '" + match.allow + "', expected '" + allow + "'");
    return;
  }
  FUZZ_CHECK(match.status == 404, "path " + shown(path) + " matched " + match.route);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Table& t = table();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  bhttp::verb method = bhttp::verb::get;
  std::string_view target = input;
  if (auto space = input.find(' '); space != std::string_view::npos) {
    method = bhttp::string_to_verb(input.substr(0, space));
    target = input.substr(space + 1);
  }

  // As Session::on_read: a target that is not origin-form is a 400.
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return 0;
  std::string path;
  al::http::Pairs query;
  try {
    path = std::string(url->encoded_path());
    for (auto param : url->params()) query.emplace_back(param.key, param.value);
  } catch (const std::exception&) {
    return 0;  // a 400 as well
  }
  FUZZ_CHECK(!path.empty() && path.front() == '/', "encoded path " + shown(path));
  FUZZ_CHECK(path.find('?') == std::string::npos, "encoded path " + shown(path));

  if (method == bhttp::verb::get) {
    std::string pattern;
    if (t.router.match_upgrade(path, pattern)) {
      FUZZ_CHECK(segments_of(pattern) == segments_of(path), "upgrade " + pattern + " for " + shown(path));
    }
  }

  check_match(t, method, path);
  // "a trailing slash does not matter" (router.hpp), nor do repeated slashes.
  auto plain = t.router.match(method, path);
  auto slashed = t.router.match(method, path + "/");
  FUZZ_CHECK(plain.status == slashed.status && plain.route == slashed.route && plain.params == slashed.params,
             "path " + shown(path) + " and with a trailing slash differ");

  // HEAD is GET without the body: where no route takes HEAD, the GET route answers.
  if (method == bhttp::verb::head && !plain.handler) {
    auto get = t.router.match(bhttp::verb::get, path);
    FUZZ_CHECK(!get.handler || plain.status == 405, "HEAD " + shown(path) + " is a 404 but GET matches");
    if (get.handler) plain = std::move(get);
  }

  if (plain.handler) {
    for (auto& [name, value] : plain.params) {
      auto encoded = boost::urls::make_pct_string_view(value);
      if (!encoded) return 0;  // a 400
      std::string decoded = encoded->decode();
      FUZZ_CHECK(decoded.size() == encoded->decoded_size() && decoded.size() <= value.size());
      // Routing worked on the encoded path: a decoded '/' stays inside its one parameter.
      FUZZ_CHECK(value.find('/') == std::string::npos);
    }
  }
  return 0;
}
