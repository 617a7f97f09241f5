#ifndef CHAT_SERVER_STOP_SIGNALS_H_
#define CHAT_SERVER_STOP_SIGNALS_H_

#include <signal.h>

namespace chat {

// Blocks SIGINT and SIGTERM in the calling thread and in every thread it
// creates afterwards (threads inherit the mask, so call this first in main),
// and returns the set for sigwait(). A parent may have left the signals
// ignored (as shells do for background jobs), and an ignored signal is
// discarded rather than queued for sigwait: their default action is
// restored first.
sigset_t BlockStopSignals();

}  // namespace chat

#endif  // CHAT_SERVER_STOP_SIGNALS_H_
