#include "server/engine/resumable_streams.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"

namespace chat {
namespace {

// Expired answers deleted per statement by the sweep, and how often it runs.
constexpr int kSweepBatch = 1000;
constexpr absl::Duration kSweepInterval = absl::Seconds(10);
// A running answer with nothing new is still asked about cancellation and
// readers, at this many flush intervals.
constexpr int kIdleChecksEvery = 3;
// A named answer not in the store may be one another replica started and
// has not written yet (it writes every flush_interval): it is looked for
// this long before the resume fails with kNotFound.
constexpr absl::Duration kNotFoundGrace = absl::Seconds(1);

absl::Status DetachedError() {
  return absl::CancelledError("the client left the stream");
}

}  // namespace

std::string StreamEventId(absl::string_view answer_id, int64_t seq) {
  return absl::StrCat(answer_id, ":", seq);
}

absl::Status ParseStreamEventId(absl::string_view event_id,
                                std::string* answer_id, int64_t* seq) {
  const size_t colon = event_id.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(event_id.substr(colon + 1), seq) || *seq < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("last_event_id must be an event id of this stream, "
                     "\"<answer id>:<sequence>\"; got \"",
                     absl::CHexEscape(event_id.substr(0, 200)), "\""));
  }
  *answer_id = std::string(event_id.substr(0, colon));
  return absl::OkStatus();
}

// One escaped field per line, in a fixed order: the stored form only this
// file reads back.
std::string EncodeTurnResult(const ChatTurnResult& r) {
  std::vector<std::string> fields = {
      r.session_id,
      r.response,
      absl::StrCat(absl::ToUnixMicros(r.timestamp)),
      absl::StrCat(r.turn_count),
      r.model,
      r.stop_reason,
      absl::StrCat(r.input_tokens),
      absl::StrCat(r.output_tokens),
      r.cost_usd.has_value() ? absl::StrCat(*r.cost_usd) : "",
      absl::StrCat(r.truncated_turns),
      r.provider,
      absl::StrCat(r.turn_id),
  };
  for (std::string& field : fields) field = absl::CEscape(field);
  return absl::StrJoin(fields, "\n");
}

absl::StatusOr<ChatTurnResult> DecodeTurnResult(absl::string_view encoded) {
  std::vector<std::string> fields = absl::StrSplit(encoded, '\n');
  if (fields.size() < 11) {
    return absl::InternalError("a stored stream result is malformed");
  }
  for (std::string& field : fields) {
    std::string raw;
    if (!absl::CUnescape(field, &raw)) {
      return absl::InternalError("a stored stream result is malformed");
    }
    field = std::move(raw);
  }
  ChatTurnResult r;
  int64_t micros = 0;
  double cost = 0;
  bool ok = absl::SimpleAtoi(fields[2], &micros) &&
            absl::SimpleAtoi(fields[3], &r.turn_count) &&
            absl::SimpleAtoi(fields[6], &r.input_tokens) &&
            absl::SimpleAtoi(fields[7], &r.output_tokens) &&
            absl::SimpleAtoi(fields[9], &r.truncated_turns);
  if (ok && !fields[8].empty()) {
    ok = absl::SimpleAtod(fields[8], &cost);
    r.cost_usd = cost;
  }
  if (!ok) return absl::InternalError("a stored stream result is malformed");
  r.session_id = std::move(fields[0]);
  r.response = std::move(fields[1]);
  r.timestamp = absl::FromUnixMicros(micros);
  r.model = std::move(fields[4]);
  r.stop_reason = std::move(fields[5]);
  r.provider = std::move(fields[10]);
  // An edit's or a regeneration's turn id; absent from results stored
  // before branches.
  if (fields.size() > 11 && !absl::SimpleAtoi(fields[11], &r.turn_id)) {
    return absl::InternalError("a stored stream result is malformed");
  }
  r.replayed = true;
  return r;
}

namespace {

// The outcome as stored, and back.
store::StreamOutcome OutcomeOf(const absl::StatusOr<ChatTurnResult>& result) {
  store::StreamOutcome outcome;
  if (result.ok()) {
    outcome.done = EncodeTurnResult(*result);
  } else {
    outcome.status_code = static_cast<int>(result.status().code());
    outcome.status_message = std::string(result.status().message());
    if (outcome.status_code == 0) outcome.status_code = 2;  // kUnknown.
  }
  return outcome;
}

absl::StatusOr<ChatTurnResult> ResultOf(const store::StreamOutcome& outcome) {
  if (outcome.status_code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(outcome.status_code),
                        outcome.status_message);
  }
  return DecodeTurnResult(outcome.done);
}

}  // namespace

// One answer run by this replica: the engine's observer for its turn. Keeps
// every delta (for local resumes) and the count already in the store.
class ResumableStreams::Answer final : public TurnObserver {
 public:
  Answer(ResumableStreams* owner, std::string id, store::SessionKey session,
         absl::Time deadline)
      : owner_(owner),
        id_(std::move(id)),
        session_(std::move(session)),
        started_at_(absl::Now()),
        deadline_(deadline) {}

  const std::string& id() const { return id_; }
  const store::SessionKey& session() const { return session_; }
  absl::Time started_at() const { return started_at_; }

  void Subscribe(StreamSubscriber* subscriber) {
    absl::MutexLock lock(&mu_);
    subscribers_.push_back(subscriber);
  }

  // Replays the deltas after `after_seq` to `subscriber`, then attaches it
  // (or ends it, if the answer ended).
  absl::Status Attach(int64_t after_seq, StreamSubscriber* subscriber) {
    absl::MutexLock lock(&mu_);
    if (after_seq > static_cast<int64_t>(deltas_.size()) + 1 ||
        (after_seq == static_cast<int64_t>(deltas_.size()) + 1 &&
         !outcome_.has_value())) {
      return absl::OutOfRangeError(
          absl::StrCat("stream ", id_, " has no event ", after_seq));
    }
    for (int64_t seq = after_seq + 1;
         seq <= static_cast<int64_t>(deltas_.size()); ++seq) {
      subscriber->OnDelta(StreamEventId(id_, seq),
                          deltas_[static_cast<size_t>(seq - 1)]);
    }
    if (outcome_.has_value()) {
      subscriber->OnEnd(
          StreamEventId(id_, static_cast<int64_t>(deltas_.size()) + 1),
          *outcome_);
      return absl::OkStatus();
    }
    subscribers_.push_back(subscriber);
    return absl::OkStatus();
  }

  void Detach(StreamSubscriber* subscriber) {
    absl::MutexLock lock(&mu_);
    auto it = std::find(subscribers_.begin(), subscribers_.end(), subscriber);
    if (it == subscribers_.end()) return;
    subscribers_.erase(it);
    if (subscribers_.empty()) detached_since_ = absl::Now();
    subscriber->OnEnd("", DetachedError());
  }

  void SetHandle(std::shared_ptr<TurnHandle> handle) {
    bool cancel;
    {
      absl::MutexLock lock(&mu_);
      handle_ = handle;
      cancel = cancel_pending_;
    }
    if (cancel) handle->Cancel();
  }

  // Returns whether the turn was still running.
  bool CancelTurn() {
    std::shared_ptr<TurnHandle> handle;
    {
      absl::MutexLock lock(&mu_);
      if (outcome_.has_value()) return false;
      cancel_pending_ = true;
      handle = handle_;
    }
    if (handle != nullptr) handle->Cancel();
    return true;
  }

  // Writes what is new to the store and acts on what the store says.
  // Returns true once the outcome is stored.
  bool Flush(store::StreamStore* store, const ResumableStreamOptions& options,
             absl::Time now) {
    if (PassedDeadline(now)) CancelTurn();
    store::StreamAppend append;
    {
      absl::MutexLock lock(&mu_);
      // A Tick may have stored an ended answer before the loop reached it as
      // ended.
      if (outcome_flushed_) return true;
      const bool has_new = flushed_ < deltas_.size() || outcome_.has_value();
      if (!has_new && ++idle_ticks_ < kIdleChecksEvery) return false;
      idle_ticks_ = 0;
      append.session = session_;
      append.answer_id = id_;
      append.started_at = started_at_;
      append.first_seq = static_cast<int64_t>(flushed_) + 1;
      append.deltas.assign(deltas_.begin() + static_cast<long>(flushed_),
                           deltas_.end());
      if (outcome_.has_value()) append.outcome = OutcomeOf(*outcome_);
      append.expires_at = now + options.detached_ttl;
    }
    absl::StatusOr<store::StreamControl> control = store->AppendStream(append);
    if (!control.ok()) {
      LogWarning("stream ", id_,
                 ": deltas not stored yet: ", control.status().ToString());
      return false;
    }
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      flushed_ =
          static_cast<size_t>(append.first_seq - 1) + append.deltas.size();
      if (append.outcome.has_value()) outcome_flushed_ = true;
      if (outcome_.has_value()) return outcome_flushed_;
      if (control->cancel_requested) cancel = true;
      if (subscribers_.empty() &&
          now - detached_since_ >= options.detached_ttl &&
          now - control->reader_seen_at >= options.detached_ttl) {
        LogInfo("stream ", id_, ": no client for ",
                absl::FormatDuration(options.detached_ttl), "; cancelled");
        cancel = true;
      }
    }
    if (cancel) CancelTurn();
    return false;
  }

  // The caller's deadline bounds the answer even when the caller left a
  // moment before it passed (its own timer fires first, so its cancel can
  // reach this replica before the deadline has passed here).
  bool PassedDeadline(absl::Time now) {
    absl::MutexLock lock(&mu_);
    if (outcome_.has_value() || cancel_pending_ || now < deadline_) {
      return false;
    }
    LogInfo("stream ", id_, ": the caller's deadline passed; cancelled");
    deadline_passed_ = true;
    return true;
  }

  // TurnObserver
  void OnAdmitted(const RateLimitStatus& status) override {
    absl::MutexLock lock(&mu_);
    for (StreamSubscriber* subscriber : subscribers_) {
      subscriber->OnAdmitted(status);
    }
  }

  void OnDelta(absl::string_view text) override {
    absl::MutexLock lock(&mu_);
    deltas_.emplace_back(text);
    const std::string event_id =
        StreamEventId(id_, static_cast<int64_t>(deltas_.size()));
    for (StreamSubscriber* subscriber : subscribers_) {
      subscriber->OnDelta(event_id, text);
    }
  }

  void OnComplete(absl::StatusOr<ChatTurnResult> result) override {
    // Once the outcome is visible the loop may store it and drop `this`:
    // what AnswerEnded needs is copied first.
    ResumableStreams* const owner = owner_;
    const std::string id = id_;
    {
      absl::MutexLock lock(&mu_);
      // Cancelled because its caller's deadline passed: resumers are told
      // so, as the caller was, not that someone cancelled it.
      if (deadline_passed_ && absl::IsCancelled(result.status())) {
        result = absl::DeadlineExceededError(
            "the deadline of the call that started the answer passed");
      }
      outcome_ = result;
      const std::string event_id =
          StreamEventId(id_, static_cast<int64_t>(deltas_.size()) + 1);
      for (StreamSubscriber* subscriber : subscribers_) {
        subscriber->OnEnd(event_id, result);
      }
      subscribers_.clear();
    }
    owner->AnswerEnded(id);
  }

 private:
  ResumableStreams* const owner_;
  const std::string id_;
  const store::SessionKey session_;
  const absl::Time started_at_;
  const absl::Time deadline_;

  absl::Mutex mu_;
  std::vector<std::string> deltas_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::StatusOr<ChatTurnResult>> outcome_ ABSL_GUARDED_BY(mu_);
  std::vector<StreamSubscriber*> subscribers_ ABSL_GUARDED_BY(mu_);
  absl::Time detached_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::shared_ptr<TurnHandle> handle_ ABSL_GUARDED_BY(mu_);
  bool cancel_pending_ ABSL_GUARDED_BY(mu_) = false;
  // Set when the cancel came from the caller's deadline (PassedDeadline).
  bool deadline_passed_ ABSL_GUARDED_BY(mu_) = false;
  size_t flushed_ ABSL_GUARDED_BY(mu_) = 0;
  bool outcome_flushed_ ABSL_GUARDED_BY(mu_) = false;
  int idle_ticks_ ABSL_GUARDED_BY(mu_) = 0;
};

class ResumableStreams::LocalAttachment final : public StreamAttachment {
 public:
  LocalAttachment(std::shared_ptr<Answer> answer, StreamSubscriber* subscriber)
      : answer_(std::move(answer)), subscriber_(subscriber) {}
  void Detach() override { answer_->Detach(subscriber_); }
  void Expire() override {
    answer_->CancelTurn();
    answer_->Detach(subscriber_);
  }

 private:
  const std::shared_ptr<Answer> answer_;
  StreamSubscriber* const subscriber_;
};

// A resume: reads the store until the answer ends (another replica runs
// it), or hands the subscriber to the answer in memory (this one does).
class ResumableStreams::RemoteReader final : public StreamAttachment {
 public:
  explicit RemoteReader(StreamSubscriber* subscriber)
      : subscriber_(subscriber) {}

  void Detach() override {
    std::shared_ptr<Answer> local;
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      if (local_ != nullptr) {
        local = local_;
      } else {
        ended_ = true;
        subscriber_->OnEnd("", DetachedError());
        return;
      }
    }
    local->Detach(subscriber_);
  }
  void Expire() override { Detach(); }

  // Ends the subscriber with `result` unless it was ended already.
  void End(absl::string_view event_id, absl::StatusOr<ChatTurnResult> result) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    subscriber_->OnEnd(event_id, std::move(result));
  }

  // Attaches to an answer of this replica instead.
  void AttachLocal(const std::shared_ptr<Answer>& answer, int64_t after_seq) {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    local_ = answer;
    if (absl::Status s = answer->Attach(after_seq, subscriber_); !s.ok()) {
      ended_ = true;
      subscriber_->OnEnd("", s);
    }
  }

  void Target(store::SessionKey session, std::string answer_id,
              int64_t after_seq) {
    session_ = std::move(session);
    answer_id_ = std::move(answer_id);
    after_seq_ = after_seq;
  }

  // Reads what is new; returns true once the subscriber was ended.
  bool Poll(store::StreamStore* store, const ResumableStreamOptions& options,
            absl::Time now) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return true;
    }
    // Tells the running replica someone is attached, a few times per TTL.
    std::optional<absl::Time> touch;
    if (now - touched_at_ >= options.detached_ttl / 4) {
      touch = now;
      touched_at_ = now;
    }
    absl::StatusOr<store::StreamRead> read =
        store->ReadStream(session_, answer_id_, after_seq_, now, touch);
    absl::MutexLock lock(&mu_);
    if (ended_) return true;
    if (!read.ok()) {
      if (absl::IsNotFound(read.status()) &&
          (answer_id_.empty() || now - created_at_ >= kNotFoundGrace)) {
        ended_ = true;
        subscriber_->OnEnd("", read.status());
        return true;
      }
      return false;  // Try again at the next tick.
    }
    if (answer_id_.empty()) answer_id_ = read->answer_id;
    for (std::string& text : read->deltas) {
      ++after_seq_;
      subscriber_->OnDelta(StreamEventId(answer_id_, after_seq_), text);
    }
    if (read->outcome.has_value()) {
      ended_ = true;
      subscriber_->OnEnd(StreamEventId(answer_id_, after_seq_ + 1),
                         ResultOf(*read->outcome));
      return true;
    }
    return false;
  }

 private:
  StreamSubscriber* const subscriber_;
  // Only the loop thread (and ResumeNow before the loop sees the reader)
  // touch these.
  store::SessionKey session_;
  std::string answer_id_;
  int64_t after_seq_ = 0;
  absl::Time touched_at_ = absl::InfinitePast();
  const absl::Time created_at_ = absl::Now();

  absl::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<Answer> local_ ABSL_GUARDED_BY(mu_);
};

ResumableStreams::ResumableStreams(ChatEngine* engine,
                                   store::StreamStore* store, ThreadPool* pool,
                                   ResumableStreamOptions options)
    : engine_(engine), store_(store), pool_(pool), options_(options) {
  std::random_device random;
  id_state_ = (static_cast<uint64_t>(random()) << 32) ^ random();
  thread_ = std::thread([this] { Loop(); });
}

ResumableStreams::~ResumableStreams() {
  std::vector<std::shared_ptr<Answer>> answers;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, answer] : answers_) answers.push_back(answer);
  }
  thread_.join();
  for (const std::shared_ptr<Answer>& answer : answers) answer->CancelTurn();
  std::vector<std::shared_ptr<RemoteReader>> readers;
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &ResumableStreams::AllEnded));
    readers.swap(readers_);
  }
  for (const std::shared_ptr<RemoteReader>& reader : readers) {
    reader->End("", absl::UnavailableError("the server is shutting down"));
  }
}

std::string ResumableStreams::NewAnswerId() {
  // 32 random bits, then a counter that starts at 64 random bits: unique per
  // process, and across replicas with overwhelming probability. The
  // generator is seeded from the device once per thread: opening the device
  // per answer was 1.5% of the server's CPU at 10,000 streams. (An answer id
  // is no secret: resuming it takes the session's own credentials.)
  thread_local std::mt19937 random(std::random_device{}());
  const uint32_t prefix = random();
  absl::MutexLock lock(&mu_);
  ++id_state_;
  return absl::StrCat(absl::Hex(prefix, absl::kZeroPad8),
                      absl::Hex(id_state_, absl::kZeroPad16));
}

absl::StatusOr<std::shared_ptr<StreamAttachment>> ResumableStreams::Start(
    ChatTurnRequest request, StreamSubscriber* subscriber) {
  auto answer = std::make_shared<Answer>(
      this, NewAnswerId(),
      store::SessionKey{request.tenant, request.session_id}, request.deadline);
  answer->Subscribe(subscriber);
  {
    absl::MutexLock lock(&mu_);
    answers_[answer->id()] = answer;
    ++running_;
  }
  absl::StatusOr<std::shared_ptr<TurnHandle>> handle =
      engine_->StartTurn(std::move(request), answer.get());
  if (!handle.ok()) {
    absl::MutexLock lock(&mu_);
    answers_.erase(answer->id());
    --running_;
    return handle.status();
  }
  answer->SetHandle(*std::move(handle));
  return std::make_shared<LocalAttachment>(answer, subscriber);
}

std::shared_ptr<StreamAttachment> ResumableStreams::Resume(
    store::SessionKey session, std::string last_event_id,
    StreamSubscriber* subscriber) {
  auto reader = std::make_shared<RemoteReader>(subscriber);
  {
    absl::MutexLock lock(&mu_);
    ++pending_calls_;
  }
  pool_->Schedule([this, session = std::move(session),
                   last_event_id = std::move(last_event_id), reader]() mutable {
    ResumeNow(std::move(session), std::move(last_event_id), reader);
    absl::MutexLock lock(&mu_);
    --pending_calls_;
  });
  return reader;
}

std::shared_ptr<ResumableStreams::Answer> ResumableStreams::FindLocal(
    const store::SessionKey& session, absl::string_view answer_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Answer> latest;
  for (const auto& [id, answer] : answers_) {
    if (answer->session().tenant != session.tenant ||
        answer->session().session_id != session.session_id) {
      continue;
    }
    if (!answer_id.empty()) {
      if (id == answer_id) return answer;
      continue;
    }
    if (latest == nullptr || answer->started_at() > latest->started_at()) {
      latest = answer;
    }
  }
  return latest;
}

void ResumableStreams::ResumeNow(store::SessionKey session,
                                 std::string last_event_id,
                                 const std::shared_ptr<RemoteReader>& reader) {
  std::string answer_id;
  int64_t after_seq = 0;
  if (!last_event_id.empty()) {
    if (absl::Status s =
            ParseStreamEventId(last_event_id, &answer_id, &after_seq);
        !s.ok()) {
      return reader->End("", s);
    }
  }
  // The session's latest answer: one running here (it may not be written
  // yet), else the store's, which knows answers of every replica.
  if (answer_id.empty()) {
    if (std::shared_ptr<Answer> local = FindLocal(session, "");
        local != nullptr) {
      return reader->AttachLocal(local, after_seq);
    }
    absl::StatusOr<store::StreamRead> latest = store_->ReadStream(
        session, "", /*after_seq=*/0, absl::Now(), std::nullopt);
    if (latest.ok()) {
      answer_id = latest->answer_id;
    } else if (!absl::IsNotFound(latest.status())) {
      return reader->End("", latest.status());
    }
  }
  std::shared_ptr<Answer> local = FindLocal(session, answer_id);
  if (local != nullptr) return reader->AttachLocal(local, after_seq);
  if (answer_id.empty()) {
    return reader->End(
        "", absl::NotFoundError(absl::StrCat("session ", session.session_id,
                                             " has no stream to resume")));
  }
  reader->Target(std::move(session), std::move(answer_id), after_seq);
  // The first read now, so an ended answer is answered without waiting.
  if (reader->Poll(store_, options_, absl::Now())) return;
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      readers_.push_back(reader);
      return;
    }
  }
  reader->End("", absl::UnavailableError("the server is stopping"));
}

void ResumableStreams::Cancel(store::SessionKey session,
                              absl::AnyInvocable<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    ++pending_calls_;
  }
  auto shared_done =
      std::make_shared<absl::AnyInvocable<void(absl::Status)>>(std::move(done));
  pool_->Schedule([this, session = std::move(session), shared_done] {
    std::vector<std::shared_ptr<Answer>> local;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, answer] : answers_) {
        if (answer->session().tenant == session.tenant &&
            answer->session().session_id == session.session_id) {
          local.push_back(answer);
        }
      }
    }
    bool cancelled = false;
    for (const std::shared_ptr<Answer>& answer : local) {
      cancelled = answer->CancelTurn() || cancelled;
    }
    absl::Status status = absl::OkStatus();
    if (!cancelled) {
      // Another replica's: it reads the flag at its next batch.
      absl::StatusOr<std::string> flagged =
          store_->RequestCancel(session, absl::Now());
      status = flagged.status();
    }
    (*shared_done)(status);
    absl::MutexLock lock(&mu_);
    --pending_calls_;
  });
}

void ResumableStreams::AnswerEnded(const std::string& id) {
  absl::MutexLock lock(&mu_);
  --running_;
  // Its outcome goes to the store now, not at the next flush.
  if (auto it = answers_.find(id); it != answers_.end()) {
    ended_.push_back(it->second);
  }
  kicked_ = true;
}

void ResumableStreams::Loop() {
  // On the steady clock: a step of the wall clock must not stall the ticks.
  using Clock = std::chrono::steady_clock;
  const Clock::duration interval =
      absl::ToChronoNanoseconds(options_.flush_interval);
  Clock::time_point next_tick = Clock::now() + interval;
  for (;;) {
    std::vector<std::shared_ptr<Answer>> ended;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &ResumableStreams::ShouldWake),
                           absl::FromChrono(next_tick - Clock::now()));
      if (stopping_) return;
      kicked_ = false;
      ended.swap(ended_);
    }
    const Clock::time_point now = Clock::now();
    if (now >= next_tick) {
      Tick();  // The ended answers too.
      next_tick = now + interval;
    } else {
      // Only the answers that ended: a Tick visits every running
      // answer, and with thousands running and ending one after another,
      // a full tick per end kept this thread busy on nothing new.
      FlushAnswers(ended, absl::Now());
    }
  }
}

void ResumableStreams::FlushAnswers(
    const std::vector<std::shared_ptr<Answer>>& answers, absl::Time now) {
  std::vector<std::string> stored;
  for (const std::shared_ptr<Answer>& answer : answers) {
    if (answer->Flush(store_, options_, now)) stored.push_back(answer->id());
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& id : stored) answers_.erase(id);
}

void ResumableStreams::Tick() {
  const absl::Time now = absl::Now();
  std::vector<std::shared_ptr<Answer>> answers;
  std::vector<std::shared_ptr<RemoteReader>> readers;
  bool sweep = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, answer] : answers_) answers.push_back(answer);
    readers = readers_;
    if (now >= next_sweep_) {
      sweep = true;
      next_sweep_ = now + kSweepInterval;
    }
  }
  FlushAnswers(answers, now);
  std::vector<RemoteReader*> finished;
  for (const std::shared_ptr<RemoteReader>& reader : readers) {
    if (reader->Poll(store_, options_, now)) finished.push_back(reader.get());
  }
  {
    absl::MutexLock lock(&mu_);
    readers_.erase(std::remove_if(readers_.begin(), readers_.end(),
                                  [&](const std::shared_ptr<RemoteReader>& r) {
                                    return std::find(finished.begin(),
                                                     finished.end(),
                                                     r.get()) != finished.end();
                                  }),
                   readers_.end());
  }
  if (sweep) {
    for (;;) {
      absl::StatusOr<int64_t> deleted =
          store_->DeleteExpiredStreams(now, kSweepBatch);
      if (!deleted.ok()) {
        LogWarning("expired streams not deleted: ",
                   deleted.status().ToString());
        break;
      }
      if (*deleted < kSweepBatch) break;
    }
  }
}

}  // namespace chat
