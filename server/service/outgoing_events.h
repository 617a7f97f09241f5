#ifndef CHAT_SERVER_SERVICE_OUTGOING_EVENTS_H_
#define CHAT_SERVER_SERVICE_OUTGOING_EVENTS_H_

#include <deque>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "chat/v1/chat.pb.h"

namespace chat {
namespace outgoing_events_internal {

// Folds `next`, a delta queued behind `into` (a delta too), into it.
inline void AppendDelta(const chat::v1::ChatStreamResponse& next,
                        chat::v1::ChatStreamResponse* into) {
  into->mutable_delta()->mutable_text()->append(next.delta().text());
  // The merged event carries the last one's id: a resume after it skips
  // them all.
  into->set_event_id(next.event_id());
}
inline void AppendDelta(const chat::v1::CompleteStreamResponse& next,
                        chat::v1::CompleteStreamResponse* into) {
  into->mutable_delta()->mutable_text()->append(next.delta().text());
}

}  // namespace outgoing_events_internal

// The events of one streamed call on their way to its transport, which
// writes one at a time, and the call's end, which follows the last write.
// Deltas that queued up behind a slow write go out as one: the client sees
// the same text in fewer, larger pieces, and a loaded server makes fewer
// writes instead of a longer queue. Once the client is gone, events are
// dropped. Not thread-safe: the owner guards it with its lock, and does what
// Next() says outside it, or under it where its transport allows.
// `Event` is a stream's response message (ChatStreamResponse,
// CompleteStreamResponse): an event with a delta, or another.
template <typename Event>
class OutgoingEvents {
 public:
  // What the transport is to do next: write `send` (untouched until
  // WriteDone), or end the call with `end`, or nothing.
  struct Step {
    const Event* send = nullptr;
    std::optional<absl::Status> end;
  };

  // Queues `event`, unless the client is gone.
  void Push(Event event) {
    if (!client_gone_) pending_.push_back(std::move(event));
  }
  // The call ends with `status` once the queue is written.
  void SetEnd(absl::Status status) { end_ = std::move(status); }
  bool has_end() const { return end_.has_value(); }

  // The client left (or the call was cancelled): what is queued is dropped,
  // and so is every event pushed later.
  void ClientGone() {
    client_gone_ = true;
    pending_.clear();
  }
  bool client_gone() const { return client_gone_; }

  // The write Next() asked for is done (`ok`), or failed: the client is
  // gone.
  void WriteDone(bool ok) {
    write_in_flight_ = false;
    if (!ok) ClientGone();
  }

  // The next write, or the end once nothing is left to write; nothing while
  // a write is in flight or after the end.
  Step Next() {
    Step step;
    if (write_in_flight_ || end_taken_) return step;
    if (!pending_.empty()) {
      in_flight_ = std::move(pending_.front());
      pending_.pop_front();
      while (in_flight_.has_delta() && !pending_.empty() &&
             pending_.front().has_delta()) {
        outgoing_events_internal::AppendDelta(pending_.front(), &in_flight_);
        pending_.pop_front();
      }
      write_in_flight_ = true;
      step.send = &in_flight_;
      return step;
    }
    if (end_.has_value()) {
      end_taken_ = true;
      step.end = *end_;
    }
    return step;
  }

 private:
  std::deque<Event> pending_;
  Event in_flight_;
  bool write_in_flight_ = false;
  bool client_gone_ = false;
  std::optional<absl::Status> end_;
  bool end_taken_ = false;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_OUTGOING_EVENTS_H_
