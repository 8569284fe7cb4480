#pragma once
// A SELECT's column list, declared once with its names: the SQL text is made from it, and a row
// is read by name (`q.text(kJob["client_id"])`), the position computed at compile time — an
// unknown name does not compile, and adding a column cannot shift another's reader.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace al::storage {

template <std::size_t N>
struct Columns {
  std::array<std::string_view, N> names;

  static constexpr int size() { return static_cast<int>(N); }

  // The position of `name` in the list.
  consteval int operator[](std::string_view name) const {
    for (std::size_t i = 0; i < N; ++i)
      if (names[i] == name) return static_cast<int>(i);
    throw "no such column";  // not a constant expression: a compile error at the caller
  }

  // "a, b, c", or with a table alias "t.a, t.b, t.c".
  std::string list(std::string_view alias = {}) const {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
      if (i) out += ", ";
      if (!alias.empty()) (out += alias) += '.';
      out += names[i];
    }
    return out;
  }
};

template <class... Names>
consteval Columns<sizeof...(Names)> columns(const Names&... names) {
  return Columns<sizeof...(Names)>{{std::string_view(names)...}};
}

}  // namespace al::storage
