#include "common/json_fields.h"

#include <gtest/gtest.h>

namespace understudy {
namespace {

using nlohmann::json;

TEST(JsonFieldsTest, WrongTypesAreErrorsNamingTheFieldNotExceptions) {
  json hello = {{"name", 1}, {"epoch", "x"}, {"flag", "yes"}, {"list", {1, 2}}, {"sub", 3}, {"neg", -1}};
  Result<std::string> name = RequireString(hello, "name", "hello");
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(name.status().message().find("hello: \"name\""), std::string::npos) << name.status();
  EXPECT_FALSE(RequireUint64(hello, "epoch", "hello").ok());
  EXPECT_FALSE(OptionalUint64(hello, "neg", 0, "hello").ok());
  EXPECT_FALSE(OptionalBool(hello, "flag", false, "hello").ok());
  EXPECT_FALSE(OptionalStringArray(hello, "list", "hello").ok());
  EXPECT_FALSE(OptionalObject(hello, "sub", "hello").ok());
  EXPECT_FALSE(OptionalString(hello, "name", "", "hello").ok());
  EXPECT_FALSE(OptionalDouble(hello, "epoch", 0, "hello").ok());
  EXPECT_FALSE(OptionalInt64(hello, "epoch", 0, "hello").ok());
}

TEST(JsonFieldsTest, NonObjectsAreRefused) {
  for (const json& not_object : {json(1), json("s"), json::array(), json(nullptr)}) {
    EXPECT_FALSE(RequireString(not_object, "name", "x").ok());
    EXPECT_FALSE(OptionalString(not_object, "name", "d", "x").ok());
    EXPECT_FALSE(OptionalObject(not_object, "name", "x").ok());
  }
}

TEST(JsonFieldsTest, AbsentOptionalsGiveTheDefaultPresentOnesTheirValue) {
  json object = {{"name", "vm1"}, {"count", 7}, {"on", true}, {"args", {"a", "b"}}, {"sub", {{"k", 1}}}};
  EXPECT_EQ(*OptionalString(object, "missing", "d", "x"), "d");
  EXPECT_EQ(*OptionalString(object, "name", "d", "x"), "vm1");
  EXPECT_EQ(*OptionalUint64(object, "count", 1, "x"), 7u);
  EXPECT_EQ(*OptionalUint32(object, "missing", 5, "x"), 5u);
  EXPECT_EQ(*OptionalBool(object, "on", false, "x"), true);
  EXPECT_EQ(*OptionalInt64(object, "count", 0, "x"), 7);
  EXPECT_EQ(OptionalStringArray(object, "args", "x")->size(), 2u);
  EXPECT_EQ(*OptionalObject(object, "missing", "x"), nullptr);
  EXPECT_NE(*OptionalObject(object, "sub", "x"), nullptr);
  EXPECT_EQ(*RequireString(object, "name", "x"), "vm1");
  EXPECT_FALSE(RequireString(object, "missing", "x").ok());
}

TEST(JsonFieldsTest, Uint32RefusesWhatDoesNotFit) {
  json object = {{"big", uint64_t{1} << 32}};
  EXPECT_FALSE(OptionalUint32(object, "big", 0, "x").ok());
}

TEST(JsonFieldsTest, ParseJsonNeverThrows) {
  EXPECT_FALSE(ParseJson("{", "x").ok());
  EXPECT_FALSE(ParseJson("\xff\xfe", "x").ok());
  EXPECT_FALSE(ParseJsonObject("[1]", "x").ok());
  EXPECT_TRUE(ParseJsonObject(R"({"a":1})", "x").ok());
}

TEST(JsonFieldsTest, Uint64TextIsStrict) {
  EXPECT_EQ(*ParseUint64Text("18446744073709551615", "rev"), UINT64_MAX);
  EXPECT_FALSE(ParseUint64Text("18446744073709551616", "rev").ok());
  EXPECT_FALSE(ParseUint64Text("", "rev").ok());
  EXPECT_FALSE(ParseUint64Text("-1", "rev").ok());
  EXPECT_FALSE(ParseUint64Text("12x", "rev").ok());
  EXPECT_FALSE(ParseUint64Text(" 1", "rev").ok());
}

}  // namespace
}  // namespace understudy
