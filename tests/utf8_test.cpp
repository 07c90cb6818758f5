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

// The one rule for configured resource strings: well-formed UTF-8, no C0, DEL or C1 control.
TEST(CleanUtf8Text, RefusesControlCharactersAndIllFormedSequences) {
  using namespace std::string_view_literals;
  EXPECT_TRUE(is_clean_utf8_text(""));
  EXPECT_TRUE(is_clean_utf8_text("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"));
  EXPECT_TRUE(is_clean_utf8_text("\xC2\xA0"));  // U+00A0, the first after C1
  EXPECT_FALSE(is_clean_utf8_text("a\0b"sv));
  EXPECT_FALSE(is_clean_utf8_text("a\nb"));
  EXPECT_FALSE(is_clean_utf8_text("a\tb"));
  EXPECT_FALSE(is_clean_utf8_text("a\x01"));
  EXPECT_FALSE(is_clean_utf8_text("a\x7F"));
  EXPECT_FALSE(is_clean_utf8_text("\xC2\x85"));      // U+0085 (NEL), C1
  EXPECT_FALSE(is_clean_utf8_text("\xC3"));          // cut sequence
  EXPECT_FALSE(is_clean_utf8_text("\xED\xA0\x80"));  // surrogate
}

}  // namespace
}  // namespace tracecast
