#ifndef CHAT_GATEWAY_APP_CALLBACK_THREADS_H_
#define CHAT_GATEWAY_APP_CALLBACK_THREADS_H_

namespace chat::gateway {

// gRPC 1.51 on Linux runs every callback of the client's callback API (a
// reactor's OnDone, a unary call's completion) on a few threads that poll one
// process-wide completion queue. Each channel that has made such a call, and
// each started server with callback services, counts as a user of that
// queue, and the release of the last user shuts it down, joins its threads
// and deletes it. When that release happens inside
// one of those callbacks (the last call on a channel the gateway replaced
// after a SIGHUP, ending as the process stops), the thread cannot join
// itself and goes on to poll the queue it just deleted: a double free
// (gRPC's CallbackAlternativeCQ::Unref, src/cpp/common/completion_queue_cc.cc).
//
// Makes the process hold one use of that queue until it exits, so that no
// release is ever the last. Call once in main before making any channel;
// later calls do nothing.
void HoldCallbackThreads();

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_CALLBACK_THREADS_H_
