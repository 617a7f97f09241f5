#ifndef CHAT_TESTS_TESTING_STORE_TURNS_H_
#define CHAT_TESTS_TESTING_STORE_TURNS_H_

// Turns and times for the store tests: whole-microsecond times (the precision
// every store keeps), so stored times compare equal to the ones written.

#include <cstdint>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "server/store/conversation_store.h"

namespace chat::testing {

// A fixed, whole-second origin; tests add microseconds to order events.
inline const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

inline absl::Time At(int64_t micros) {
  return kT0 + absl::Microseconds(micros);
}

inline store::Turn MakeTurn(std::string user, std::string assistant,
                            absl::Time created_at, int64_t input_tokens = 0,
                            int64_t output_tokens = 0) {
  store::Turn turn;
  turn.user_message = std::move(user);
  turn.assistant_message = std::move(assistant);
  turn.model = "test-model";
  turn.stop_reason = "end_turn";
  turn.input_tokens = input_tokens;
  turn.output_tokens = output_tokens;
  turn.created_at = created_at;
  return turn;
}

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_STORE_TURNS_H_
