#include "server/engine/session_titler.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/utf8.h"

namespace chat {
namespace {

struct TitleMetrics {
  Counter& titled;
  Counter& failures;

  static TitleMetrics& Get() {
    static TitleMetrics* metrics = [] {
      MetricsRegistry& r = MetricsRegistry::Default();
      return new TitleMetrics{
          r.AddCounter("chatd_titles_total",
                       "Sessions given a title after their first exchange."),
          r.AddCounter("chatd_title_failures_total",
                       "Title calls that failed or gave no usable title; the "
                       "session stays untitled and its turn is unaffected."),
      };
    }();
    return *metrics;
  }
};

// The instruction for the title call. The exchange goes in one user
// message so that any chat model treats it as material, not as a
// conversation to continue.
constexpr absl::string_view kTitlePrompt =
    "You name conversations. Reply with a short title (at most six words) "
    "for the conversation you are given, in the language it is written in. "
    "Reply with the title only: no quotes, no final punctuation.";

// How much of each message the title call sees.
constexpr size_t kExcerptBytes = 2000;

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }

// `text` with malformed UTF-8 dropped and every control character (C0, DEL,
// C1) replaced by a space.
std::string CleanText(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x80) {
      out += IsControl(c) ? ' ' : static_cast<char>(c);
      ++p;
      continue;
    }
    const size_t n = Utf8SequenceLength(p, end);
    if (n == 0) {
      ++p;
      continue;
    }
    // U+0080..U+009F, the C1 controls, are C2 80..C2 9F.
    if (n == 2 && c == 0xC2 && static_cast<unsigned char>(p[1]) < 0xA0) {
      out += ' ';
    } else {
      out.append(p, n);
    }
    p += n;
  }
  return out;
}

// The longest prefix of `text` (valid UTF-8) of at most `max_bytes` that
// does not split a character.
absl::string_view CutAtChar(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

// Cuts `title` to `max_bytes` at the last space before it if there is one.
std::string CutAtWord(absl::string_view title, size_t max_bytes) {
  if (title.size() <= max_bytes) return std::string(title);
  absl::string_view cut = CutAtChar(title, max_bytes);
  const size_t space = cut.rfind(' ');
  if (space != absl::string_view::npos && space > 0) cut = cut.substr(0, space);
  return std::string(absl::StripTrailingAsciiWhitespace(cut));
}

// Collapses runs of spaces into one and trims the ends.
std::string CollapseSpaces(absl::string_view text) {
  std::vector<absl::string_view> words =
      absl::StrSplit(text, ' ', absl::SkipEmpty());
  return absl::StrJoin(words, " ");
}

}  // namespace

absl::StatusOr<std::string> NormalizeTitle(absl::string_view title) {
  title = absl::StripAsciiWhitespace(title);
  if (title.size() > kMaxTitleBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("title must be at most ", kMaxTitleBytes, " bytes, got ",
                     title.size()));
  }
  const char* p = title.data();
  const char* const end = p + title.size();
  while (p < end) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c < 0x80) {
      if (IsControl(c)) {
        return absl::InvalidArgumentError(
            "title must not contain control characters");
      }
      ++p;
      continue;
    }
    const size_t n = Utf8SequenceLength(p, end);
    if (n == 0) return absl::InvalidArgumentError("title must be UTF-8");
    if (n == 2 && c == 0xC2 && static_cast<unsigned char>(p[1]) < 0xA0) {
      return absl::InvalidArgumentError(
          "title must not contain control characters");
    }
    p += n;
  }
  return std::string(title);
}

std::string TitleFromFirstWords(absl::string_view message, int max_words) {
  constexpr size_t kMaxBytes = 60;
  // The first line that has any words.
  std::string line;
  for (absl::string_view l : absl::StrSplit(message, '\n')) {
    line = CollapseSpaces(CleanText(l));
    if (!line.empty()) break;
  }
  std::vector<absl::string_view> words =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  if (words.size() > static_cast<size_t>(max_words)) words.resize(max_words);
  return CutAtWord(absl::StrJoin(words, " "), kMaxBytes);
}

std::string CleanGeneratedTitle(absl::string_view answer) {
  constexpr size_t kMaxBytes = 80;
  std::string line;
  for (absl::string_view l : absl::StrSplit(answer, '\n')) {
    line = CollapseSpaces(CleanText(l));
    if (!line.empty()) break;
  }
  absl::string_view title = line;
  for (absl::string_view prefix : {"Title:", "title:", "TITLE:"}) {
    if (absl::ConsumePrefix(&title, prefix)) break;
  }
  // Markdown emphasis, quotes and a final period or colon, in any order.
  for (bool changed = true; changed;) {
    changed = false;
    title = absl::StripAsciiWhitespace(title);
    for (absl::string_view wrap :
         {"\"", "'", "*", "_", "`", "#", "\xE2\x80\x9C", "\xE2\x80\x9D",
          "\xC2\xAB", "\xC2\xBB"}) {
      changed |= absl::ConsumePrefix(&title, wrap);
      changed |= absl::ConsumeSuffix(&title, wrap);
    }
    changed |= absl::ConsumeSuffix(&title, ".");
    changed |= absl::ConsumeSuffix(&title, ":");
  }
  return CutAtWord(title, kMaxBytes);
}

// One title completion: collects the answer, then saves it or counts the
// failure. Lives until the provider's OnComplete.
class SessionTitler::TitleCall final
    : public llm::CompletionSink,
      public std::enable_shared_from_this<TitleCall> {
 public:
  TitleCall(SessionTitler* titler, store::SessionKey key)
      : titler_(titler), key_(std::move(key)) {}

  void set_call(std::shared_ptr<llm::CompletionCall> call) {
    absl::MutexLock lock(&mu_);
    call_ = std::move(call);
  }
  void Cancel() {
    std::shared_ptr<llm::CompletionCall> call;
    {
      absl::MutexLock lock(&mu_);
      call = call_;
    }
    if (call != nullptr) call->Cancel();
  }

  void OnDelta(absl::string_view text) override {
    // Bounded: a model that ignores max_tokens cannot grow this far.
    if (answer_.size() < 4096) absl::StrAppend(&answer_, text);
  }

  void OnComplete(absl::StatusOr<llm::CompletionResult> result) override {
    SessionTitler* const titler = titler_;
    {
      absl::MutexLock lock(&titler->mu_);
      titler->calls_.erase(shared_from_this());
    }
    if (!result.ok()) {
      titler->Failed(key_.session_id, result.status());
      titler->JobEnded();
      return;
    }
    std::string title = CleanGeneratedTitle(answer_);
    if (title.empty()) {
      titler->Failed(key_.session_id,
                     absl::InternalError("the model answered no title"));
      titler->JobEnded();
      return;
    }
    titler->Save(std::move(key_), std::move(title));
  }

 private:
  SessionTitler* const titler_;
  store::SessionKey key_;
  std::string answer_;  // The provider's calls never overlap.
  absl::Mutex mu_;
  std::shared_ptr<llm::CompletionCall> call_ ABSL_GUARDED_BY(mu_);
};

SessionTitler::SessionTitler(store::ConversationStore* store,
                             llm::LlmProvider* provider, ThreadPool* pool,
                             TitleOptions options)
    : store_(store),
      provider_(provider),
      pool_(pool),
      options_(std::move(options)) {
  TitleMetrics::Get();  // The series exist from the start, at 0.
}

SessionTitler::~SessionTitler() {
  std::set<std::shared_ptr<TitleCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    calls = calls_;
  }
  for (const std::shared_ptr<TitleCall>& call : calls) call->Cancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* jobs) { return *jobs == 0; }, &jobs_));
}

void SessionTitler::TitleFirstExchange(const store::SessionKey& key,
                                       absl::string_view user_message,
                                       absl::string_view reply) {
  if (!options_.enabled) return;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    ++jobs_;
  }
  if (options_.from_first_words) {
    Save(key, TitleFromFirstWords(user_message));
    return;
  }
  llm::CompletionRequest request;
  request.system_prompt = std::string(kTitlePrompt);
  request.messages.push_back(
      {"user",
       absl::StrCat("User: ", CutAtChar(user_message, kExcerptBytes),
                    "\n\nAssistant: ", CutAtChar(reply, kExcerptBytes)),
       std::nullopt});
  request.model = options_.model;
  request.max_tokens = 32;
  // Nobody watches a title arrive: one JSON answer rather than a stream of
  // events.
  request.stream = false;
  request.deadline = absl::Now() + options_.timeout;
  auto call = std::make_shared<TitleCall>(this, key);
  {
    absl::MutexLock lock(&mu_);
    calls_.insert(call);
  }
  // The provider never calls the sink from inside Start, so the call is
  // registered before it can complete.
  call->set_call(provider_->Start(std::move(request), call));
}

void SessionTitler::WaitUntilIdle() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* jobs) { return *jobs == 0; }, &jobs_));
}

void SessionTitler::Save(store::SessionKey key, std::string title) {
  if (title.empty()) {
    JobEnded();
    return;
  }
  pool_->Schedule([this, key = std::move(key), title = std::move(title)] {
    absl::StatusOr<bool> saved =
        store_->SetTitle(key, title, /*only_if_untitled=*/true);
    if (saved.ok()) {
      if (*saved) TitleMetrics::Get().titled.Increment();
    } else if (!absl::IsNotFound(saved.status())) {
      // A session deleted meanwhile needs no title; anything else does.
      Failed(key.session_id, saved.status());
    }
    JobEnded();
  });
}

void SessionTitler::Failed(absl::string_view session_id,
                           const absl::Status& why) {
  TitleMetrics::Get().failures.Increment();
  if (absl::IsCancelled(why)) return;  // Shutting down.
  LogWarning("no title for session ", session_id, ": ", why.ToString());
}

void SessionTitler::JobEnded() {
  absl::MutexLock lock(&mu_);
  --jobs_;
}

}  // namespace chat
