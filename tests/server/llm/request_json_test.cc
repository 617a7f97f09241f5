// The request-body writer against nlohmann's dump, which the providers'
// bodies were made with: the same bytes for every string (quotes, controls,
// non-ASCII, ill-formed UTF-8) and every double.

#include "server/llm/request_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace chat::llm {
namespace {

std::string Nlohmann(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace);
}

std::string Ours(const std::string& text) {
  std::string out = "prefix";  // Appends: what is there stays.
  AppendJsonString(text, &out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  return out.substr(6);
}

TEST(RequestJsonTest, TrickyStringsAsNlohmannWritesThem) {
  const std::vector<std::string> cases = {
      "",
      "plain text",
      "quote \" backslash \\ slash /",
      "\b\f\n\r\t",
      std::string("\0\x01\x1f\x7f", 4),
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf",
      "\xf4\x8f\xbf\xbf",  // U+10FFFF.
      "\xff",              // Never valid.
      "a\xc3",             // Cut short at the end.
      "\xc3(",             // A lead byte, then no continuation.
      "\xc0\xaf",          // Overlong.
      "\xe0\x80\xaf",      // Overlong, three bytes.
      "\xed\xa0\x80",      // A surrogate.
      "\xf4\x90\x80\x80",  // Past U+10FFFF.
      "\xf0\x9f\x98",      // Three of four.
      "ok \x80 ok \xbf\xbf ok",
      "\xe2\x82\xac\xe2\x82",  // Good, then cut short.
      "\"\xff\"\n",
  };
  for (const std::string& text : cases) {
    EXPECT_EQ(Ours(text), Nlohmann(text)) << "input bytes: " << text;
  }
}

TEST(RequestJsonTest, RandomBytesAsNlohmannWritesThem) {
  // Mostly bytes around UTF-8's boundaries, so that sequences form and
  // break often.
  const std::vector<unsigned char> alphabet = {
      'a',  ' ',  '"',  '\\', '\n', 0x01, 0x1f, 0x7f, 0x80,
      0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0,
      0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff};
  std::mt19937 random(11);
  for (int i = 0; i < 20000; ++i) {
    std::string text(random() % 12, '\0');
    for (char& c : text) c = alphabet[random() % alphabet.size()];
    ASSERT_EQ(Ours(text), Nlohmann(text)) << "case " << i;
  }
}

TEST(RequestJsonTest, DoublesAsNlohmannWritesThem) {
  const std::vector<double> cases = {0.0,
                                     -0.0,
                                     0.5,
                                     0.7,
                                     1.0,
                                     2.0,
                                     1e-5,
                                     1e21,
                                     1e22,
                                     123456789.125,
                                     0.1 + 0.2,
                                     -1.5,
                                     std::numeric_limits<double>::min(),
                                     std::numeric_limits<double>::max(),
                                     std::nan(""),
                                     std::numeric_limits<double>::infinity()};
  for (double d : cases) {
    std::string out;
    AppendJsonDouble(d, &out);
    EXPECT_EQ(out, nlohmann::json(d).dump()) << d;
  }
}

}  // namespace
}  // namespace chat::llm
