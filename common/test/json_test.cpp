#include "common/json/json.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <string>
#include <vector>

namespace {

namespace bj = boost::json;
using al::json::ObjectReader;

bj::object obj(std::string_view text) {
  std::string error;
  auto v = al::json::parse(text, error);
  EXPECT_TRUE(v) << error;
  EXPECT_TRUE(v && v->is_object());
  return v && v->is_object() ? v->as_object() : bj::object{};
}

std::string nested_arrays(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') + "1" +
         std::string(static_cast<std::size_t>(depth), ']');
}

// ---- parse ---------------------------------------------------------------------------------

TEST(JsonParse, ValidDocuments) {
  std::string error;
  auto v = al::json::parse(R"({"a":1,"b":[true,null,"x"],"c":{"d":2.5}})", error);
  ASSERT_TRUE(v);
  EXPECT_TRUE(error.empty());
  EXPECT_EQ(v->at("a").as_int64(), 1);
  EXPECT_EQ(v->at("b").as_array().size(), 3u);
  EXPECT_EQ(v->at("c").at("d").as_double(), 2.5);
  auto scalar = al::json::parse("  42 ", error);
  ASSERT_TRUE(scalar);
  EXPECT_EQ(scalar->as_int64(), 42);
}

TEST(JsonParse, MalformedRejectedWithReason) {
  for (const char* bad : {"", "{", "{\"a\":}", "{'a':1}", "[1,2,]", "{\"a\":1} trailing", "nul",
                          "{\"a\" 1}", "\"unterminated", "{\"a\":01}"}) {
    std::string error;
    auto v = al::json::parse(bad, error);
    EXPECT_FALSE(v) << "accepted: " << bad;
    EXPECT_EQ(error.rfind("Malformed JSON: ", 0), 0u) << "error for " << bad << ": " << error;
    EXPECT_GT(error.size(), std::string("Malformed JSON: ").size());
  }
}

TEST(JsonParse, DepthLimit) {
  std::string error;
  // Default max_depth is 32.
  EXPECT_TRUE(al::json::parse(nested_arrays(32), error)) << error;
  error.clear();
  EXPECT_FALSE(al::json::parse(nested_arrays(33), error));
  EXPECT_EQ(error.rfind("Malformed JSON: ", 0), 0u);
  // A custom limit.
  error.clear();
  EXPECT_TRUE(al::json::parse(nested_arrays(3), error, 3)) << error;
  EXPECT_FALSE(al::json::parse(nested_arrays(4), error, 3));
  EXPECT_FALSE(al::json::parse(R"({"a":{"b":{"c":{"d":1}}}})", error, 3));
  EXPECT_TRUE(al::json::parse(R"({"a":{"b":{"c":1}}})", error, 3));
  // Deep nesting far beyond the limit fails cleanly (no stack exhaustion).
  EXPECT_FALSE(al::json::parse(nested_arrays(100000), error));
}

TEST(JsonParse, DuplicateKeysRefusedAtAnyDepth) {
  struct Case {
    std::string text;
    std::string key;
  };
  std::vector<Case> cases = {
      {R"({"a":1,"a":2})", R"("a")"},
      {R"({"a":1,"b":2,"a":1})", R"("a")"},                         // same value too
      {R"({"x":{"y":[{"z":1,"q":{},"z":2}]}})", R"("z")"},          // depth 3
      {R"([{"k":{"k":{"dup":1,"dup":null}}}])", R"("dup")"},        // the same name at other depths is fine
      {R"({"a":1,"\u0061":2})", R"("a")"},                           // escapes compare decoded
      {R"({"\u00e9t\u00e9":1,"été":2})", "\"été\""},  // UTF-8 vs \u escapes
      {R"({"a\"b":1,"a\u0022b":2})", R"("a\"b")"},                 // shown escaped
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(al::json::parse(c.text, error)) << "accepted: " << c.text;
    EXPECT_EQ(error, "Duplicate key " + c.key + " in a JSON object") << c.text;
  }
  // Equal keys in different objects, and keys equal only up to case, are not duplicates.
  std::string error;
  auto v = al::json::parse(R"({"a":{"a":1},"b":[{"a":1},{"a":2}],"A":3})", error);
  ASSERT_TRUE(v) << error;
  EXPECT_EQ(v->at("b").as_array().size(), 2u);
  // A long key is shown cut to 64 bytes, never inside a UTF-8 character.
  std::string key = std::string(63, 'k') + "é" + std::string(10, 'k');
  EXPECT_FALSE(al::json::parse("{\"" + key + "\":1,\"" + key + "\":2}", error));
  EXPECT_EQ(error, "Duplicate key \"" + std::string(63, 'k') + "\"… in a JSON object");
}

TEST(JsonParse, ManyKeysAreCheckedInLinearTime) {
  // 50k distinct keys: pairwise comparisons (1.25e9) would take far longer than the bound; the set
  // takes about 0.4 s in the debug (ASan) build.
  std::string text = "{";
  for (int i = 0; i < 50000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  text += "}";
  std::string error;
  auto begin = std::chrono::steady_clock::now();
  auto v = al::json::parse(text, error);
  auto elapsed = std::chrono::steady_clock::now() - begin;
  ASSERT_TRUE(v) << error;
  EXPECT_EQ(v->as_object().size(), 50000u);
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  std::string with_duplicate = text.substr(0, text.size() - 1) + ",\"k49999\":1}";
  EXPECT_FALSE(al::json::parse(with_duplicate, error));
  EXPECT_EQ(error, R"(Duplicate key "k49999" in a JSON object)");
}

TEST(JsonSerialize, RoundTrips) {
  bj::value v = bj::object{{"a", 1}, {"b", "x"}};
  std::string error;
  auto back = al::json::parse(al::json::serialize(v), error);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
}

// Found by fuzz/json_object: Boost.JSON 1.81 read this literal as 3.6358853999999996e-17, so the
// body was stored and echoed with a number the client did not send.
TEST(JsonParse, DoubleIsTheLiteralCorrectlyRounded) {
  std::string error;
  auto v = al::json::parse(R"({"x":0.000000000000000036358854})", error);
  ASSERT_TRUE(v) << error;
  EXPECT_EQ(v->at("x").as_double(), 3.6358854e-17);
  EXPECT_EQ(al::json::serialize(*v), R"({"x":3.6358854E-17})");
  auto back = al::json::parse(al::json::serialize(*v), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(*back, *v);
}

// ---- ObjectReader --------------------------------------------------------------------------

TEST(ObjectReader, UnknownFieldsReported) {
  auto o = obj(R"({"name":"x","nmae":"typo","extra":1})");
  ObjectReader r(o, {"name"});
  EXPECT_EQ(r.required_string("name"), "x");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.errors().size(), 2u);
  // Errors are reported in object order.
  EXPECT_EQ(r.errors()[0].field, "nmae");
  EXPECT_EQ(r.errors()[0].message, "unknown field");
  EXPECT_EQ(r.errors()[1].field, "extra");
  EXPECT_EQ(r.errors()[1].message, "unknown field");
}

TEST(ObjectReader, UnknownFieldNameTruncatedTo64) {
  std::string longname(200, 'k');
  bj::object o;
  o[longname] = 1;
  ObjectReader r(o, {});
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].field, std::string(64, 'k'));
}

TEST(ObjectReader, UnknownFieldNameCutBetweenCharacters) {
  std::string name = "k";  // then 17 four-byte characters: the 64-byte cut falls inside the 16th
  for (int i = 0; i < 17; ++i) name += "\xF0\x9D\x90\x93";
  bj::object o;
  o[name] = 1;
  ObjectReader r(o, {});
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].field, name.substr(0, 61));  // valid UTF-8, so the 400 is valid JSON
}

TEST(ObjectReader, EmptyObjectWithNoFieldsIsOk) {
  bj::object o;
  ObjectReader r(o, {"a"});
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.optional_string("a"));
  EXPECT_TRUE(r.ok());
}

TEST(ObjectReader, RequiredString) {
  auto o = obj(R"({"ok":"hello","num":5,"empty":"","long":"abcdef","short":"ab"})");
  ObjectReader r(o, {"ok", "num", "empty", "long", "short", "missing"});
  EXPECT_EQ(r.required_string("ok"), "hello");
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.required_string("missing"));
  EXPECT_FALSE(r.required_string("num"));
  EXPECT_FALSE(r.required_string("empty"));
  EXPECT_FALSE(r.required_string("long", 1, 5));
  EXPECT_FALSE(r.required_string("short", 3, 10));
  EXPECT_EQ(r.required_string("long", 1, 6), "abcdef");  // boundary: exactly max
  EXPECT_EQ(r.required_string("short", 2, 10), "ab");     // boundary: exactly min
  ASSERT_EQ(r.errors().size(), 5u);
  EXPECT_EQ(r.errors()[0].field, "missing");
  EXPECT_EQ(r.errors()[0].message, "is required");
  EXPECT_EQ(r.errors()[1].field, "num");
  EXPECT_EQ(r.errors()[1].message, "must be a string");
  EXPECT_EQ(r.errors()[2].field, "empty");
  EXPECT_EQ(r.errors()[2].message, "must not be empty");
  EXPECT_EQ(r.errors()[3].field, "long");
  EXPECT_EQ(r.errors()[3].message, "must be at most 5 characters");
  EXPECT_EQ(r.errors()[4].field, "short");
  EXPECT_EQ(r.errors()[4].message, "must be at least 3 characters");
}

TEST(ObjectReader, RequiredStringNullIsMissing) {
  auto o = obj(R"({"a":null})");
  ObjectReader r(o, {"a"});
  EXPECT_FALSE(r.required_string("a"));
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].message, "is required");
}

TEST(ObjectReader, OptionalString) {
  auto o = obj(R"({"a":"x","n":null,"e":"","t":true,"l":"toolong"})");
  ObjectReader r(o, {"a", "n", "e", "t", "l", "absent"});
  EXPECT_EQ(r.optional_string("a"), "x");
  EXPECT_FALSE(r.optional_string("absent"));
  EXPECT_FALSE(r.optional_string("n"));    // null counts as absent
  EXPECT_EQ(r.optional_string("e"), "");  // an empty optional string is allowed
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.optional_string("t"));
  EXPECT_FALSE(r.optional_string("l", 3));
  ASSERT_EQ(r.errors().size(), 2u);
  EXPECT_EQ(r.errors()[0].field, "t");
  EXPECT_EQ(r.errors()[0].message, "must be a string");
  EXPECT_EQ(r.errors()[1].field, "l");
  EXPECT_EQ(r.errors()[1].message, "must be at most 3 characters");
}

TEST(ObjectReader, Bools) {
  auto o = obj(R"({"t":true,"f":false,"s":"true","i":1,"n":null})");
  ObjectReader r(o, {"t", "f", "s", "i", "n", "absent"});
  EXPECT_EQ(r.required_bool("t"), true);
  EXPECT_EQ(r.required_bool("f"), false);
  EXPECT_EQ(r.optional_bool("f"), false);
  EXPECT_FALSE(r.optional_bool("absent"));
  EXPECT_FALSE(r.optional_bool("n"));
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.required_bool("s"));
  EXPECT_FALSE(r.optional_bool("i"));
  EXPECT_FALSE(r.required_bool("absent"));
  EXPECT_FALSE(r.required_bool("n"));
  ASSERT_EQ(r.errors().size(), 4u);
  EXPECT_EQ(r.errors()[0].field, "s");
  EXPECT_EQ(r.errors()[0].message, "must be a boolean");
  EXPECT_EQ(r.errors()[1].field, "i");
  EXPECT_EQ(r.errors()[1].message, "must be a boolean");
  EXPECT_EQ(r.errors()[2].message, "is required");
  EXPECT_EQ(r.errors()[3].field, "n");
  EXPECT_EQ(r.errors()[3].message, "is required");
}

TEST(ObjectReader, DecimalFromStringIntAndDouble) {
  auto o = obj(R"({"s":"10.50","i":7,"d":12.25,"big":18446744073709551615,"z":"0"})");
  ObjectReader r(o, {"s", "i", "d", "big", "z"});
  EXPECT_EQ(r.required_decimal("s")->to_string(), "10.5");
  EXPECT_EQ(r.required_decimal("i")->to_string(), "7");
  EXPECT_EQ(r.required_decimal("d")->to_string(), "12.25");
  EXPECT_EQ(r.required_decimal("big")->to_string(), "18446744073709551615");  // uint64 path
  EXPECT_TRUE(r.required_decimal("z")->is_zero());
  EXPECT_TRUE(r.ok());
}

TEST(ObjectReader, DecimalErrors) {
  auto o = obj(
      R"({"bad":"1e5","prec":0.30000000000000004,"type":true,"arr":[1],"neg":"-1","negnum":-3,
          "frac19":"0.0000000000000000001"})");
  ObjectReader r(o, {"bad", "prec", "type", "arr", "neg", "negnum", "frac19", "missing"});
  EXPECT_FALSE(r.required_decimal("bad"));
  EXPECT_FALSE(r.required_decimal("prec"));
  EXPECT_FALSE(r.required_decimal("type"));
  EXPECT_FALSE(r.required_decimal("arr"));
  EXPECT_FALSE(r.required_decimal("neg"));
  EXPECT_FALSE(r.required_decimal("negnum"));
  EXPECT_FALSE(r.required_decimal("frac19"));
  EXPECT_FALSE(r.required_decimal("missing"));
  ASSERT_EQ(r.errors().size(), 8u);
  const std::string bad_text =
      "must be a decimal amount such as \"10.50\" (at most 18 fractional digits)";
  EXPECT_EQ(r.errors()[0].field, "bad");
  EXPECT_EQ(r.errors()[0].message, bad_text);
  EXPECT_EQ(r.errors()[1].field, "prec");
  EXPECT_EQ(r.errors()[1].message,
            "has more precision than a JSON number carries exactly; send it as a string");
  EXPECT_EQ(r.errors()[2].message, "must be a number or a decimal string");
  EXPECT_EQ(r.errors()[3].message, "must be a number or a decimal string");
  EXPECT_EQ(r.errors()[4].field, "neg");
  EXPECT_EQ(r.errors()[4].message, "must not be negative");
  EXPECT_EQ(r.errors()[5].field, "negnum");
  EXPECT_EQ(r.errors()[5].message, "must not be negative");
  EXPECT_EQ(r.errors()[6].message, bad_text);
  EXPECT_EQ(r.errors()[7].field, "missing");
  EXPECT_EQ(r.errors()[7].message, "is required");
}

TEST(ObjectReader, DecimalAllowNegativeAndOptional) {
  auto o = obj(R"({"neg":"-1.5","negnum":-2.5,"n":null})");
  ObjectReader r(o, {"neg", "negnum", "n", "absent"});
  EXPECT_EQ(r.required_decimal("neg", true)->to_string(), "-1.5");
  EXPECT_EQ(r.optional_decimal("negnum", true)->to_string(), "-2.5");
  EXPECT_FALSE(r.optional_decimal("n"));
  EXPECT_FALSE(r.optional_decimal("absent"));
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.optional_decimal("negnum"));
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].message, "must not be negative");
}

TEST(ObjectReader, DecimalOutOfRangeNumberIsRejected) {
  // 1e21 arrives as a double; it has one significant digit but 22 integer digits.
  auto o = obj(R"({"huge":1e21,"huge_text":"1000000000000000000000"})");
  ObjectReader r(o, {"huge", "huge_text"});
  EXPECT_FALSE(r.required_decimal("huge"));
  EXPECT_FALSE(r.required_decimal("huge_text"));
  ASSERT_EQ(r.errors().size(), 2u);
  EXPECT_EQ(r.errors()[0].field, "huge");
  EXPECT_EQ(r.errors()[1].field, "huge_text");
}

TEST(ObjectReader, OptionalIntRange) {
  auto o = obj(R"({"ok":5,"lo":0,"hi":11,"min":1,"max":10,"dbl":5.0,"exp":1e1,"frac":5.5,"str":"5","n":null,
                   "huge":18446744073709551615,"huge_dbl":9.3e18})");
  ObjectReader r(o, {"ok", "lo", "hi", "min", "max", "dbl", "exp", "frac", "str", "n", "huge", "huge_dbl"});
  EXPECT_EQ(r.optional_int("ok", 1, 10), 5);
  EXPECT_EQ(r.optional_int("min", 1, 10), 1);
  EXPECT_EQ(r.optional_int("max", 1, 10), 10);
  // An integer is an integer however it is written (JSON Schema's "integer" too).
  EXPECT_EQ(r.optional_int("dbl", 1, 10), 5);
  EXPECT_EQ(r.optional_int("exp", 1, 10), 10);
  EXPECT_FALSE(r.optional_int("n", 1, 10));
  EXPECT_FALSE(r.optional_int("absent", 1, 10));
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.optional_int("lo", 1, 10));
  EXPECT_FALSE(r.optional_int("hi", 1, 10));
  EXPECT_FALSE(r.optional_int("frac", 1, 10));
  EXPECT_FALSE(r.optional_int("str", 1, 10));
  EXPECT_FALSE(r.optional_int("huge", 0, 100));
  EXPECT_FALSE(r.optional_int("huge_dbl", 0, std::numeric_limits<long long>::max()));
  ASSERT_EQ(r.errors().size(), 6u);
  EXPECT_EQ(r.errors()[0].field, "lo");
  EXPECT_EQ(r.errors()[0].message, "must be an integer from 1 to 10");
  EXPECT_EQ(r.errors()[1].field, "hi");
  EXPECT_EQ(r.errors()[2].field, "frac");
  EXPECT_EQ(r.errors()[3].field, "str");
  EXPECT_EQ(r.errors()[4].message, "must be an integer from 0 to 100");
  EXPECT_EQ(r.errors()[5].field, "huge_dbl");
}

TEST(ObjectReader, OptionalObjectAndNestedReaders) {
  auto o = obj(R"({"name":"", "budget":{"amount":"abc","currency":"USD","bogus":1,
                   "limits":{"max":"x"}}, "notobj":[1], "nul":null})");
  ObjectReader r(o, {"name", "budget", "notobj", "nul"});
  EXPECT_FALSE(r.required_string("name"));
  const bj::object* budget = r.optional_object("budget");
  ASSERT_NE(budget, nullptr);
  ObjectReader b = r.nested(*budget, "budget", {"amount", "currency", "limits"});
  EXPECT_FALSE(b.required_decimal("amount"));
  EXPECT_EQ(b.required_string("currency"), "USD");
  EXPECT_FALSE(b.required_string("missing_child"));
  const bj::object* limits = b.optional_object("limits");
  ASSERT_NE(limits, nullptr);
  ObjectReader l = b.nested(*limits, "limits", {"max"});
  EXPECT_FALSE(l.optional_int("max", 0, 5));
  EXPECT_EQ(r.optional_object("notobj"), nullptr);
  EXPECT_EQ(r.optional_object("nul"), nullptr);
  EXPECT_EQ(r.optional_object("absent"), nullptr);

  // All readers share one error list; the parent sees the children's errors.
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(l.ok());
  ASSERT_EQ(r.errors().size(), 6u);
  EXPECT_EQ(&r.errors(), &b.errors());
  EXPECT_EQ(r.errors()[0].field, "name");
  EXPECT_EQ(r.errors()[1].field, "budget.bogus");  // unknown field, found when nesting
  EXPECT_EQ(r.errors()[1].message, "unknown field");
  EXPECT_EQ(r.errors()[2].field, "budget.amount");
  EXPECT_EQ(r.errors()[3].field, "budget.missing_child");
  EXPECT_EQ(r.errors()[3].message, "is required");
  EXPECT_EQ(r.errors()[4].field, "budget.limits.max");
  EXPECT_EQ(r.errors()[4].message, "must be an integer from 0 to 5");
  EXPECT_EQ(r.errors()[5].field, "notobj");
  EXPECT_EQ(r.errors()[5].message, "must be an object");
}

TEST(ObjectReader, PresentAndFail) {
  auto o = obj(R"({"a":1,"n":null})");
  ObjectReader r(o, {"a", "n"});
  ASSERT_NE(r.present("a"), nullptr);
  EXPECT_EQ(r.present("a")->as_int64(), 1);
  EXPECT_EQ(r.present("n"), nullptr);
  EXPECT_EQ(r.present("zzz"), nullptr);
  ObjectReader child = r.nested(o, "child", {"a", "n"});
  child.fail("custom", "went wrong");
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].field, "child.custom");
  EXPECT_EQ(r.errors()[0].message, "went wrong");
}

TEST(ObjectReader, PrefixConstructor) {
  auto o = obj(R"({"x":1})");
  ObjectReader r(o, {}, "root.");
  ASSERT_EQ(r.errors().size(), 1u);
  EXPECT_EQ(r.errors()[0].field, "root.x");
}

TEST(ErrorsToJson, Shape) {
  std::vector<al::json::FieldError> errors = {{"a", "is required"}, {"b.c", "unknown field"}};
  bj::array out = al::json::errors_to_json(errors);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (bj::value(bj::object{{"field", "a"}, {"message", "is required"}})));
  EXPECT_EQ(out[1].as_object().size(), 2u);
  EXPECT_EQ(out[1].at("field").as_string(), "b.c");
  EXPECT_EQ(out[1].at("message").as_string(), "unknown field");
  EXPECT_EQ(al::json::serialize(out),
            R"([{"field":"a","message":"is required"},{"field":"b.c","message":"unknown field"}])");
  EXPECT_TRUE(al::json::errors_to_json({}).empty());
}

}  // namespace
