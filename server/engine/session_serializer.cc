#include "server/engine/session_serializer.h"

#include <utility>

namespace chat {

void SessionSerializer::Enqueue(const std::string& key,
                                std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = waiting_.try_emplace(key);
    if (!inserted) {
      it->second.push_back(std::move(task));
      return;
    }
  }
  pool_->Schedule(std::move(task));
}

void SessionSerializer::RunOrEnqueue(const std::string& key,
                                     std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = waiting_.try_emplace(key);
    if (!inserted) {
      it->second.push_back(std::move(task));
      return;
    }
  }
  task();
}

void SessionSerializer::Release(const std::string& key) {
  std::function<void()> next;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return;  // Would be a bug in the caller.
    if (it->second.empty()) {
      waiting_.erase(it);
      return;
    }
    next = std::move(it->second.front());
    it->second.pop_front();
  }
  pool_->Schedule(std::move(next));
}

int SessionSerializer::ActiveSessions() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiting_.size());
}

}  // namespace chat
