#pragma once
#include <string>
#include <vector>

#include "common/http/message.hpp"

namespace al::http {

// Routes by method and path pattern; "{name}" matches one non-empty path segment.
class Router {
 public:
  void add(bhttp::verb method, std::string pattern, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // null: see status
    unsigned status = 404;             // 404 no such path, 405 path exists for other methods
    std::string route;
    Pairs params;
    std::string allow;  // for 405
  };
  Match match(bhttp::verb method, std::string_view path) const;

 private:
  struct Route {
    bhttp::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace al::http
