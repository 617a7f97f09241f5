#ifndef CHAT_COMMON_UTF8_H_
#define CHAT_COMMON_UTF8_H_

#include <cstddef>

namespace chat {

// The length of the well-formed UTF-8 sequence of two to four bytes that
// starts at `p` (before `end`), or 0: for ASCII, for a byte that cannot
// start a sequence, and for an overlong form, a surrogate, anything past
// U+10FFFF or a sequence cut short (Unicode's table 3-7, the rule
// nlohmann's lexer and protobuf's parser apply). Inline: the JSON scanners
// call it for every non-ASCII character.
inline size_t Utf8SequenceLength(const char* p, const char* end) {
  auto byte = [&](size_t i) -> unsigned {
    return p + i < end ? static_cast<unsigned char>(p[i]) : 0x100;
  };
  auto in = [](unsigned b, unsigned lo, unsigned hi) {
    return b >= lo && b <= hi;
  };
  const unsigned b0 = byte(0);
  if (in(b0, 0xC2, 0xDF)) return in(byte(1), 0x80, 0xBF) ? 2 : 0;
  if (in(b0, 0xE0, 0xEF)) {
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in(b0, 0xF0, 0xF4)) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) &&
                   in(byte(3), 0x80, 0xBF)
               ? 4
               : 0;
  }
  return 0;
}

}  // namespace chat

#endif  // CHAT_COMMON_UTF8_H_
