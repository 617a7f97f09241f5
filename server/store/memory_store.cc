#include "server/store/memory_store.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/page_token.h"
#include "server/store/turn_tree.h"

namespace chat::store {
namespace {

// The SQLite store keeps microseconds; rounding here too makes both stores
// return the same times, and keeps page tokens (which carry microseconds)
// exact.
absl::Time TruncateToMicros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

absl::Status SessionNotFound(const SessionKey& key) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " not found"));
}

absl::Status TurnNotFound(const SessionKey& key, int turn_id) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " has no turn ", turn_id));
}

// Moves `pos` back to the start of the UTF-8 sequence it falls in.
size_t CharStart(absl::string_view text, size_t pos) {
  while (pos > 0 && pos < text.size() &&
         (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) {
    --pos;
  }
  return pos;
}

// Up to ~kSnippetBytes of `content` around the first match of `words` (all
// lowercase, as is `lower`, the lowercased content), every match inside
// wrapped in kMatchStart / kMatchEnd.
std::string Snippet(absl::string_view content, absl::string_view lower,
                    const std::vector<std::string>& words) {
  constexpr size_t kBefore = 40;
  constexpr size_t kSnippetBytes = 160;
  size_t first = lower.size();
  for (const std::string& w : words) first = std::min(first, lower.find(w));
  if (first == absl::string_view::npos || first >= lower.size()) first = 0;
  const size_t begin =
      CharStart(content, first > kBefore ? first - kBefore : 0);
  const size_t end =
      std::min(content.size(), begin + kSnippetBytes) == content.size()
          ? content.size()
          : CharStart(content, begin + kSnippetBytes);
  std::string out;
  if (begin > 0) out += "\xE2\x80\xA6";  // An ellipsis.
  size_t i = begin;
  while (i < end) {
    size_t match_len = 0;
    for (const std::string& w : words) {
      if (lower.compare(i, w.size(), w) == 0) {
        match_len = std::max(match_len, w.size());
      }
    }
    if (match_len == 0) {
      out += content[i++];
      continue;
    }
    absl::StrAppend(&out, kMatchStart, content.substr(i, match_len), kMatchEnd);
    i += match_len;
  }
  if (end < content.size()) out += "\xE2\x80\xA6";
  return out;
}

}  // namespace

absl::StatusOr<SessionInfo> MemoryConversationStore::GetSession(
    const SessionKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  return it->second.info;
}

absl::StatusOr<std::vector<StoredMessage>> MemoryConversationStore::LoadHistory(
    const SessionKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  return *SelectBranch(it->second.messages, it->second.active_turn_id);
}

absl::StatusOr<std::vector<StoredMessage>> MemoryConversationStore::LoadBranch(
    const SessionKey& key, int turn_id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  std::optional<std::vector<StoredMessage>> branch =
      SelectBranch(it->second.messages, turn_id);
  if (turn_id <= 0 || !branch.has_value()) return TurnNotFound(key, turn_id);
  return *std::move(branch);
}

int MemoryConversationStore::StoreTurn(Session& session, int parent_turn_id,
                                       int depth, const Turn& turn) {
  const absl::Time created_at = TruncateToMicros(turn.created_at);
  // Ids count every turn stored since the last reset: 2 messages each.
  const int turn_id = static_cast<int>(session.messages.size() / 2) + 1;
  StoredMessage user{"user", turn.user_message, created_at};
  user.turn_id = turn_id;
  user.parent_turn_id = parent_turn_id;
  StoredMessage assistant{"assistant", turn.assistant_message, created_at,
                          turn.output_tokens};
  assistant.turn_id = turn_id;
  assistant.parent_turn_id = parent_turn_id;
  session.messages.push_back(std::move(user));
  session.messages.push_back(std::move(assistant));
  session.details.push_back(TurnDetails{turn.model, turn.stop_reason,
                                        turn.input_tokens, turn.cost_usd});
  session.input_tokens += turn.input_tokens;
  session.output_tokens += turn.output_tokens;
  if (turn.cost_usd.has_value()) {
    session.cost_usd = session.cost_usd.value_or(0) + *turn.cost_usd;
  }
  session.info.updated_at = created_at;
  session.active_turn_id = turn_id;
  session.info.turn_count = depth;
  return turn_id;
}

absl::StatusOr<StoredTurn> MemoryConversationStore::AppendBranchTurn(
    const SessionKey& key, int parent_turn_id, const Turn& turn) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  Session& session = it->second;
  TurnTree tree;
  for (size_t i = 0; i < session.messages.size(); i += 2) {
    tree.Add(session.messages[i].turn_id, session.messages[i].parent_turn_id);
  }
  if (parent_turn_id < 0 ||
      (parent_turn_id > 0 && !tree.Contains(parent_turn_id))) {
    return TurnNotFound(key, parent_turn_id);
  }
  StoreTurn(session, parent_turn_id, tree.DepthOf(parent_turn_id) + 1, turn);
  return StoredTurn{session.active_turn_id, session.info.turn_count};
}

absl::StatusOr<int> MemoryConversationStore::SwitchBranch(const SessionKey& key,
                                                          int turn_id) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  Session& session = it->second;
  TurnTree tree;
  for (size_t i = 0; i < session.messages.size(); i += 2) {
    tree.Add(session.messages[i].turn_id, session.messages[i].parent_turn_id);
  }
  if (!tree.Contains(turn_id)) return TurnNotFound(key, turn_id);
  session.active_turn_id = tree.NewestLeafFrom(turn_id);
  session.info.turn_count = tree.DepthOf(session.active_turn_id);
  return session.info.turn_count;
}

absl::StatusOr<StoredTurn> MemoryConversationStore::AppendTurn(
    const SessionKey& key, int expected_turn_count,
    absl::string_view system_prompt, const Turn& turn) {
  if (expected_turn_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected_turn_count must be >= 0, got ", expected_turn_count));
  }
  const absl::Time created_at = TruncateToMicros(turn.created_at);
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  bool created = false;
  if (it == sessions_.end()) {
    if (expected_turn_count != 0) {
      return absl::AbortedError(absl::StrCat(
          "session ", key.session_id, " changed concurrently: expected ",
          expected_turn_count, " turns, found no session"));
    }
    Session session;
    session.info.session_id = key.session_id;
    session.info.system_prompt = std::string(system_prompt);
    session.info.created_at = created_at;
    it = sessions_.emplace(Key(key.tenant, key.session_id), std::move(session))
             .first;
    created = true;
  } else if (it->second.info.turn_count != expected_turn_count) {
    return absl::AbortedError(absl::StrCat(
        "session ", key.session_id, " changed concurrently: expected ",
        expected_turn_count, " turns, found ", it->second.info.turn_count));
  }
  if (turn.answers.has_value()) {
    // Under mu_, before anything changes: the turn and its answer land
    // together or not at all (requests_ never takes mu_). Complete keeps
    // microseconds, as created_at here.
    absl::StatusOr<bool> answered = requests_.Complete(
        turn.answers->key, turn.answers->owner,
        AnswerOfTurn(key, turn, it->second.info.turn_count + 1));
    if (!answered.ok() || !*answered) {
      if (created) sessions_.erase(it);  // Nothing of the turn stays.
      return answered.ok() ? RequestClaimLostError(*turn.answers)
                           : answered.status();
    }
  }
  Session& session = it->second;
  const int turn_id = StoreTurn(session, session.active_turn_id,
                                session.info.turn_count + 1, turn);
  return StoredTurn{turn_id, session.info.turn_count};
}

absl::StatusOr<int> MemoryConversationStore::ResetSession(const SessionKey& key,
                                                          absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  Session& session = it->second;
  const int previous = session.info.turn_count;
  session.messages.clear();
  session.details.clear();
  session.active_turn_id = 0;
  session.input_tokens = 0;
  session.output_tokens = 0;
  session.cost_usd.reset();
  session.info.turn_count = 0;
  session.info.updated_at = TruncateToMicros(now);
  return previous;
}

absl::StatusOr<bool> MemoryConversationStore::DeleteSession(
    const SessionKey& key) {
  absl::MutexLock lock(&mu_);
  return sessions_.erase(Key(key.tenant, key.session_id)) > 0;
}

absl::StatusOr<SessionPage> MemoryConversationStore::ListSessions(
    absl::string_view tenant, int page_size, absl::string_view page_token) {
  absl::StatusOr<std::optional<PageCursor>> parsed =
      ParsePageRequest(page_size, page_token);
  if (!parsed.ok()) return parsed.status();
  const std::optional<PageCursor>& cursor = *parsed;

  std::vector<SessionInfo> candidates;
  {
    absl::MutexLock lock(&mu_);
    // A linear scan of the tenant's sessions per page: fine for the sizes a
    // memory store holds.
    for (auto it = sessions_.lower_bound(Key(std::string(tenant), ""));
         it != sessions_.end() && it->first.first == tenant; ++it) {
      const SessionInfo& info = it->second.info;
      if (cursor.has_value() &&
          !ListedAfter(*cursor, absl::ToUnixMicros(info.updated_at),
                       info.session_id)) {
        continue;
      }
      candidates.push_back(info);
    }
  }

  auto listed_before = [](const SessionInfo& a, const SessionInfo& b) {
    if (a.updated_at != b.updated_at) return a.updated_at > b.updated_at;
    return a.session_id < b.session_id;
  };
  SessionPage page;
  if (candidates.size() > static_cast<size_t>(page_size)) {
    std::partial_sort(candidates.begin(), candidates.begin() + page_size,
                      candidates.end(), listed_before);
    candidates.resize(page_size);
    const SessionInfo& last = candidates.back();
    page.next_page_token =
        EncodePageToken({absl::ToUnixMicros(last.updated_at), last.session_id});
  } else {
    std::sort(candidates.begin(), candidates.end(), listed_before);
  }
  page.sessions = std::move(candidates);
  return page;
}

absl::StatusOr<StoreStats> MemoryConversationStore::GetStats(
    absl::string_view tenant) {
  StoreStats stats;
  absl::MutexLock lock(&mu_);
  for (auto it = sessions_.lower_bound(Key(std::string(tenant), ""));
       it != sessions_.end() && it->first.first == tenant; ++it) {
    ++stats.total_sessions;
    stats.total_messages += static_cast<int64_t>(it->second.messages.size());
    stats.total_input_tokens += it->second.input_tokens;
    stats.total_output_tokens += it->second.output_tokens;
    if (it->second.cost_usd.has_value()) {
      stats.total_cost_usd =
          stats.total_cost_usd.value_or(0) + *it->second.cost_usd;
    }
  }
  return stats;
}

absl::StatusOr<bool> MemoryConversationStore::SetTitle(const SessionKey& key,
                                                       absl::string_view title,
                                                       bool only_if_untitled) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  if (only_if_untitled && !it->second.info.title.empty()) return false;
  it->second.info.title = std::string(title);
  return true;
}

absl::StatusOr<SearchPage> MemoryConversationStore::SearchMessages(
    absl::string_view tenant, absl::string_view query, int page_size,
    absl::string_view page_token) {
  absl::StatusOr<int64_t> offset =
      ParseSearchRequest(query, page_size, page_token);
  if (!offset.ok()) return offset.status();
  std::vector<std::string> words =
      absl::StrSplit(absl::AsciiStrToLower(query), ' ', absl::SkipWhitespace());
  if (words.empty()) return SearchPage();

  struct Ranked {
    int64_t matches;
    SearchHit hit;
  };
  std::vector<Ranked> found;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.lower_bound(Key(std::string(tenant), ""));
         it != sessions_.end() && it->first.first == tenant; ++it) {
      const Session& session = it->second;
      for (size_t i = 0; i < session.messages.size(); ++i) {
        const StoredMessage& m = session.messages[i];
        const std::string lower = absl::AsciiStrToLower(m.content);
        int64_t matches = 0;
        bool all = true;
        for (const std::string& w : words) {
          size_t pos = lower.find(w);
          if (pos == std::string::npos) {
            all = false;
            break;
          }
          for (; pos != std::string::npos;
               pos = lower.find(w, pos + w.size())) {
            ++matches;
          }
        }
        if (!all) continue;
        SearchHit hit;
        hit.session_id = session.info.session_id;
        hit.session_title = session.info.title;
        hit.message_index = static_cast<int64_t>(i);
        hit.role = m.role;
        hit.snippet = Snippet(m.content, lower, words);
        hit.created_at = m.created_at;
        found.push_back({matches, std::move(hit)});
      }
    }
  }
  std::sort(found.begin(), found.end(), [](const Ranked& a, const Ranked& b) {
    if (a.matches != b.matches) return a.matches > b.matches;
    if (a.hit.created_at != b.hit.created_at) {
      return a.hit.created_at > b.hit.created_at;
    }
    if (a.hit.session_id != b.hit.session_id) {
      return a.hit.session_id < b.hit.session_id;
    }
    return a.hit.message_index < b.hit.message_index;
  });
  SearchPage page;
  const size_t start = static_cast<size_t>(*offset);
  for (size_t i = start; i < found.size(); ++i) {
    if (page.hits.size() == static_cast<size_t>(page_size)) {
      page.next_page_token = EncodeSearchToken(query, static_cast<int64_t>(i));
      break;
    }
    page.hits.push_back(std::move(found[i].hit));
  }
  return page;
}

absl::StatusOr<int64_t> MemoryConversationStore::DeleteSessionsIdleSince(
    absl::Time cutoff) {
  absl::MutexLock lock(&mu_);
  int64_t deleted = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.info.updated_at < cutoff) {
      it = sessions_.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  return deleted;
}

absl::StatusOr<SessionArchive> MemoryConversationStore::ExportSession(
    const SessionKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(Key(key.tenant, key.session_id));
  if (it == sessions_.end()) return SessionNotFound(key);
  const Session& session = it->second;
  SessionArchive archive;
  archive.session_id = key.session_id;
  archive.system_prompt = session.info.system_prompt;
  archive.title = session.info.title;
  archive.created_at = session.info.created_at;
  archive.updated_at = session.info.updated_at;
  archive.active_turn_id = session.active_turn_id;
  archive.turns.reserve(session.details.size());
  for (size_t i = 0; i + 1 < session.messages.size(); i += 2) {
    const StoredMessage& user = session.messages[i];
    const StoredMessage& assistant = session.messages[i + 1];
    const TurnDetails& details = session.details[i / 2];
    ArchivedTurn turn;
    turn.turn_id = user.turn_id;
    turn.parent_turn_id = user.parent_turn_id;
    turn.created_at = user.created_at;
    turn.user_message = user.content;
    turn.assistant_message = assistant.content;
    turn.model = details.model;
    turn.stop_reason = details.stop_reason;
    turn.input_tokens = details.input_tokens;
    turn.output_tokens = assistant.tokens;
    turn.cost_usd = details.cost_usd;
    archive.turns.push_back(std::move(turn));
  }
  return archive;
}

absl::Status MemoryConversationStore::ImportSession(
    absl::string_view tenant, const SessionArchive& archive, bool replace) {
  if (absl::Status s = ValidateSessionArchive(archive); !s.ok()) return s;
  Session session;
  session.info.session_id = archive.session_id;
  session.info.system_prompt = archive.system_prompt;
  session.info.title = archive.title;
  session.info.created_at = TruncateToMicros(archive.created_at);
  for (const ArchivedTurn& turn : archive.turns) {
    Turn stored;
    stored.user_message = turn.user_message;
    stored.assistant_message = turn.assistant_message;
    stored.model = turn.model;
    stored.stop_reason = turn.stop_reason;
    stored.input_tokens = turn.input_tokens;
    stored.output_tokens = turn.output_tokens;
    stored.cost_usd = turn.cost_usd;
    stored.created_at = turn.created_at;
    StoreTurn(session, turn.parent_turn_id, /*depth=*/0, stored);
  }
  // StoreTurn left the last turn active and its time as updated_at.
  session.active_turn_id = archive.active_turn_id;
  session.info.turn_count = BranchLength(archive, archive.active_turn_id);
  session.info.updated_at = TruncateToMicros(archive.updated_at);
  absl::MutexLock lock(&mu_);
  Key key(std::string(tenant), archive.session_id);
  auto it = sessions_.find(key);
  if (it != sessions_.end() && !replace) {
    return absl::AlreadyExistsError(
        absl::StrCat("session ", archive.session_id, " already exists"));
  }
  sessions_[std::move(key)] = std::move(session);
  return absl::OkStatus();
}

}  // namespace chat::store
