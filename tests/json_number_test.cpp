// Tests for tracecast/json_number.h: JSON numbers read as the nearest double at any length.
#include "tracecast/json_number.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

namespace tracecast {
namespace {

double read(std::string_view tok) {
  double d = -12345;
  EXPECT_TRUE(json_number_to_double(tok, d)) << tok;
  return d;
}

TEST(JsonNumber, LongNumbersReadAsTheNearestDouble) {
  for (const char* s : {"0.7000000000000000000001", "0.1234567890123456789012345678901234567890",
                        "-0.7000000000000000000001", "0.99999999999999999999999999",
                        "3.14159265358979323846264338327950288", "7000000000000000000001e-22",
                        "1.00000000000000000000001e5", "0.000000000000000000000000001234567890123456789012",
                        "123456789012345678901234567890", "1.7976931348623157000000000001e308",
                        "0.10000000000000000000000000000000000000000000000000001E+2"}) {
    EXPECT_EQ(read(s), std::strtod(s, nullptr)) << s;
  }
}

TEST(JsonNumber, TheTokenEndsAtTheFirstCharacterNotOfTheNumber) {
  EXPECT_EQ(read("0.7000000000000000000001 ,"), 0.7);
  EXPECT_EQ(read("0.7000000000000000000001}"), 0.7);
  EXPECT_EQ(read("-0"), 0.0);
  EXPECT_TRUE(std::signbit(read("-0.0")));
}

TEST(JsonNumber, OverflowIsAnErrorUnderflowIsZero) {
  double d = 5;
  EXPECT_FALSE(json_number_to_double("1e999", d));
  EXPECT_FALSE(json_number_to_double("-1e999", d));
  EXPECT_FALSE(json_number_to_double(std::string(400, '9'), d));
  EXPECT_EQ(d, 5);
  EXPECT_EQ(read("1e-999"), 0.0);
  EXPECT_TRUE(std::signbit(read("-1e-999")));
  EXPECT_EQ(read("0." + std::string(400, '0') + "1"), 0.0);
  EXPECT_FALSE(json_number_to_double("", d));
  EXPECT_FALSE(json_number_to_double("nan", d));
  EXPECT_FALSE(json_number_to_double("inf", d));
  EXPECT_FALSE(json_number_to_double("+1", d));
  EXPECT_FALSE(json_number_to_double("\"1\"", d));
}

TEST(JsonNumber, LongMeansMoreThanNineteenSignificantDigits) {
  EXPECT_FALSE(json_number_is_long("0.1"));
  EXPECT_FALSE(json_number_is_long("1234567890123456789"));               // 19
  EXPECT_TRUE(json_number_is_long("12345678901234567890"));               // 20
  EXPECT_FALSE(json_number_is_long("0.0000000000000000001234567890123"));  // leading zeros don't count
  EXPECT_TRUE(json_number_is_long("0.7000000000000000000001"));
  EXPECT_FALSE(json_number_is_long("1.234567890123456789e-300"));          // exponent digits don't count
  EXPECT_TRUE(json_number_is_long("-1.2345678901234567890e5"));
}

TEST(JsonNumber, ExactKeepsAShortTokensFastReadingAndRereadsALongOne) {
  // A short token: the fast reading is kept as given (no second look at the text).
  EXPECT_EQ(json_number_exact("0.5", 0.25), 0.25);
  EXPECT_EQ(json_number_exact("1234567890123456789", 7.0), 7.0);
  // A long one: read again from its text (the wrong fast reading replaced).
  EXPECT_EQ(json_number_exact("0.7000000000000000000001", 0.00087), 0.7);
  EXPECT_EQ(json_number_exact("0.7000000000000000000001, ", 0.00087), 0.7);  // trailing bytes as raw_json_token gives
  // A long token beyond the double range: the fast reading stays.
  EXPECT_EQ(json_number_exact("1" + std::string(20, '0') + "e999", 3.0), 3.0);
}

}  // namespace
}  // namespace tracecast
