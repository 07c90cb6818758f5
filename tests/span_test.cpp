#include "tracecast/span.h"

#include <gtest/gtest.h>

#include <string>

namespace tracecast {
namespace {

TEST(TraceId, ParsesEitherCaseAndWritesLowercase) {
  const TraceId id = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C");
  ASSERT_TRUE(id.valid());
  char hex[32];
  id.to_hex(hex);
  EXPECT_EQ(std::string(hex, 32), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(TraceId::from_hex("5b8efff798038103d269b633813fc60c"), id);
}

TEST(TraceId, RejectsWrongLengthNonHexAndAllZero) {
  EXPECT_FALSE(TraceId::from_hex("5b8efff798038103d269b633813fc60").valid());
  EXPECT_FALSE(TraceId::from_hex("5b8efff798038103d269b633813fc60c0").valid());
  EXPECT_FALSE(TraceId::from_hex("5b8efff798038103d269b633813fc6zz").valid());
  EXPECT_FALSE(TraceId::from_hex(std::string(32, '0')).valid());
  EXPECT_FALSE(TraceId::from_hex("").valid());
}

TEST(SpanId, RoundTripsThroughHexAndU64) {
  const SpanId id = SpanId::from_u64(0x0123456789abcdefULL);
  char hex[16];
  id.to_hex(hex);
  EXPECT_EQ(std::string(hex, 16), "0123456789abcdef");
  EXPECT_EQ(SpanId::from_hex("0123456789ABCDEF"), id);
  EXPECT_FALSE(SpanId::from_hex("0000000000000000").valid());
  EXPECT_FALSE(SpanId::from_hex("0123456789abcde").valid());
  EXPECT_FALSE(SpanId::from_hex("0123456789abcdeg").valid());
}

TEST(AttributeValue, KeepsTypeAndValue) {
  const std::string_view strs[] = {"a", "b"};
  const std::int64_t ints[] = {1, -2};
  EXPECT_EQ(AttributeValue::string("x").as_string(), "x");
  EXPECT_EQ(AttributeValue::int64(-5).as_int64(), -5);
  EXPECT_TRUE(AttributeValue::boolean(true).as_bool());
  EXPECT_DOUBLE_EQ(AttributeValue::float64(0.5).as_double(), 0.5);
  EXPECT_EQ(AttributeValue::strings(strs).as_strings().size(), 2u);
  EXPECT_EQ(AttributeValue::strings(strs).type(), ValueType::string_array);
  EXPECT_EQ(AttributeValue::int64s(ints).as_int64s()[1], -2);
  EXPECT_EQ(AttributeValue().type(), ValueType::empty);
}

}  // namespace
}  // namespace tracecast
