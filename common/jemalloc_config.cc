// jemalloc's options, read by jemalloc when the process starts (it looks up
// the `malloc_conf` symbol). Linked into chat-server and chat-gateway only
// when they are built with jemalloc (cmake/Allocator.cmake); MALLOC_CONF in
// the environment still overrides it.
//
// background_thread: freed pages are returned to the system by jemalloc's
// own thread as they age (dirty_decay_ms, 10 s by default), also while the
// process is idle. Without it pages are only purged on later allocations,
// so the memory a burst of 10,000 streams took would stay with an idle
// process.
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc expects.
const char* malloc_conf = "background_thread:true";
}
