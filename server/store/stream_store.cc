#include "server/store/stream_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/store/expiry_sweep.h"

namespace chat::store {
namespace {

absl::Status AnswerNotFound(const SessionKey& session,
                            absl::string_view answer_id) {
  if (answer_id.empty()) {
    return absl::NotFoundError(
        absl::StrCat("session ", session.session_id, " has no stream"));
  }
  return absl::NotFoundError(absl::StrCat("stream ", answer_id, " of session ",
                                          session.session_id, " not found"));
}

}  // namespace

absl::StatusOr<StreamControl> MemoryStreamStore::AppendStream(
    const StreamAppend& append) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = answers_.try_emplace(append.answer_id);
  Answer& answer = it->second;
  if (inserted) {
    answer.session = append.session;
    answer.started_at = append.started_at;
  }
  for (size_t i = 0; i < append.deltas.size(); ++i) {
    const int64_t seq = append.first_seq + static_cast<int64_t>(i);
    if (seq == static_cast<int64_t>(answer.deltas.size()) + 1) {
      answer.deltas.push_back(append.deltas[i]);
    }
  }
  if (append.outcome.has_value() && !answer.outcome.has_value()) {
    answer.outcome = append.outcome;
  }
  answer.expires_at = append.expires_at;
  return answer.control;
}

absl::StatusOr<StreamRead> MemoryStreamStore::ReadStream(
    const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
    absl::Time now, std::optional<absl::Time> touch) {
  absl::MutexLock lock(&mu_);
  auto found = answers_.end();
  if (!answer_id.empty()) {
    found = answers_.find(std::string(answer_id));
  } else {
    for (auto it = answers_.begin(); it != answers_.end(); ++it) {
      if (it->second.session.tenant != session.tenant ||
          it->second.session.session_id != session.session_id ||
          it->second.expires_at <= now) {
        continue;
      }
      if (found == answers_.end() ||
          it->second.started_at > found->second.started_at) {
        found = it;
      }
    }
  }
  if (found == answers_.end() || found->second.expires_at <= now ||
      found->second.session.tenant != session.tenant ||
      found->second.session.session_id != session.session_id) {
    return AnswerNotFound(session, answer_id);
  }
  Answer& answer = found->second;
  if (touch.has_value()) answer.control.reader_seen_at = *touch;
  StreamRead read;
  read.answer_id = found->first;
  for (int64_t seq = after_seq + 1;
       seq <= static_cast<int64_t>(answer.deltas.size()); ++seq) {
    read.deltas.push_back(answer.deltas[static_cast<size_t>(seq - 1)]);
  }
  read.outcome = answer.outcome;
  return read;
}

absl::StatusOr<std::string> MemoryStreamStore::RequestCancel(
    const SessionKey& session, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::string id;
  for (auto& [answer_id, answer] : answers_) {
    if (answer.session.tenant != session.tenant ||
        answer.session.session_id != session.session_id ||
        answer.outcome.has_value() || answer.expires_at <= now) {
      continue;
    }
    answer.control.cancel_requested = true;
    id = answer_id;
  }
  if (id.empty()) {
    return absl::NotFoundError(absl::StrCat("session ", session.session_id,
                                            " has no answer in progress"));
  }
  return id;
}

absl::StatusOr<int64_t> MemoryStreamStore::DeleteExpiredStreams(absl::Time now,
                                                                int limit) {
  if (absl::Status s = CheckSweepLimit(limit); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  return EraseExpired(answers_, now, limit);
}

}  // namespace chat::store
