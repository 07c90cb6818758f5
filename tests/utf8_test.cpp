#include "tracecast/utf8.h"

#include <gtest/gtest.h>

namespace tracecast {
namespace {

TEST(Utf8Prefix, KeepsShortTextWhole) { EXPECT_EQ(utf8_prefix("abc", 3), "abc"); }

TEST(Utf8Prefix, CutsAsciiAtTheLimit) { EXPECT_EQ(utf8_prefix("abcdef", 4), "abcd"); }

TEST(Utf8Prefix, NeverSplitsAMultiByteSequence) {
  const std::string_view euro = "ab\xE2\x82\xAC" "cd";  // ab€cd
  EXPECT_EQ(utf8_prefix(euro, 2), "ab");
  EXPECT_EQ(utf8_prefix(euro, 3), "ab");
  EXPECT_EQ(utf8_prefix(euro, 4), "ab");
  EXPECT_EQ(utf8_prefix(euro, 5), "ab\xE2\x82\xAC");
  const std::string_view emoji = "\xF0\x9F\x98\x80!";  // 😀!
  EXPECT_EQ(utf8_prefix(emoji, 3), "");
  EXPECT_EQ(utf8_prefix(emoji, 4), "\xF0\x9F\x98\x80");
}

TEST(Utf8Prefix, InvalidBytesAreCutByLengthOnly) {
  const std::string_view junk = "\x80\x80\x80\x80\x80";
  EXPECT_EQ(utf8_prefix(junk, 2).size(), 2u);
  EXPECT_EQ(utf8_prefix("\xFF\xFE\xFD", 1).size(), 1u);
}

}  // namespace
}  // namespace tracecast
