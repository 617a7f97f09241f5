#ifndef CHAT_TESTS_FUZZ_FUZZ_CHECK_H_
#define CHAT_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

// A property a harness checks beyond "no crash": when it does not hold the
// run aborts, so libFuzzer saves the input as a crash like any other bug.
#define FUZZ_CHECK(condition, what)                                        \
  do {                                                                     \
    if (!(condition)) {                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, \
                   __LINE__, #condition, what);                            \
      std::abort();                                                        \
    }                                                                      \
  } while (0)

#endif  // CHAT_TESTS_FUZZ_FUZZ_CHECK_H_
