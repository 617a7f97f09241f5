#ifndef CHAT_SERVER_ENGINE_SESSION_TITLER_H_
#define CHAT_SERVER_ENGINE_SESSION_TITLER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "server/llm/llm_provider.h"
#include "server/store/conversation_store.h"

namespace chat {

// The longest title UpdateSession accepts, in bytes.
inline constexpr size_t kMaxTitleBytes = 200;

// `title` with surrounding whitespace trimmed, if it is valid: at most
// kMaxTitleBytes of UTF-8 without control characters. kInvalidArgument
// naming the rule otherwise. (Protobuf has already checked a gRPC string is
// UTF-8; this also guards titles made here.)
absl::StatusOr<std::string> NormalizeTitle(absl::string_view title);

// A title from the first words of `message`: its first line, at most
// `max_words` words and 60 bytes (cut at a word, or a character for one
// long word), control characters dropped. Empty for a message without
// words.
std::string TitleFromFirstWords(absl::string_view message, int max_words = 6);

// A model's answer to the title prompt made fit to store: the first
// non-empty line, without surrounding quotes, a "Title:" prefix, markdown
// emphasis or a final period, cut to 80 bytes. Empty if nothing is left.
std::string CleanGeneratedTitle(absl::string_view answer);

struct TitleOptions {
  // False: sessions get no title until a user gives them one.
  bool enabled = false;
  // Titles are the first words of the first message, with no model call:
  // for the offline echo provider, whose replies say nothing new.
  bool from_first_words = false;
  // The model asked for titles (--title_model); empty: the provider's
  // default model.
  std::string model;
  // How long a title call may take.
  absl::Duration timeout = absl::Seconds(30);
};

// Gives a session its title after its first exchange, off the caller's
// path: the turn's answer has already gone out when the title is made. With
// a model, one short completion; a failed call (or an unusable answer)
// leaves the session untitled and counts in chatd_title_failures_total; it
// never affects the turn. A title made here never replaces one a user set
// meanwhile. Thread-safe.
class SessionTitler {
 public:
  // All three must outlive the titler; store writes run on `pool`.
  SessionTitler(store::ConversationStore* store, llm::LlmProvider* provider,
                ThreadPool* pool, TitleOptions options);
  SessionTitler(const SessionTitler&) = delete;
  SessionTitler& operator=(const SessionTitler&) = delete;
  // Cancels running title calls and waits until all work has ended; the
  // pool must still run.
  ~SessionTitler();

  // Starts making the title of `key` from its first exchange. Returns at
  // once.
  void TitleFirstExchange(const store::SessionKey& key,
                          absl::string_view user_message,
                          absl::string_view reply);

  // Waits until every title started so far is stored or given up, without
  // cancelling anything (tests).
  void WaitUntilIdle();

 private:
  class TitleCall;
  // Writes `title` (unless empty) on the pool, then ends the job.
  void Save(store::SessionKey key, std::string title);
  void JobEnded();
  void Failed(absl::string_view session_id, const absl::Status& why);

  store::ConversationStore* const store_;
  llm::LlmProvider* const provider_;
  ThreadPool* const pool_;
  const TitleOptions options_;

  absl::Mutex mu_;
  int jobs_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Model calls not yet complete, to cancel at shutdown.
  std::set<std::shared_ptr<TitleCall>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_SESSION_TITLER_H_
