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
//
// dirty_decay_ms:1000, muzzy_decay_ms:0: freed pages go back within about a
// second, not ten, and straight to the system (no lazy "muzzy" stage). After
// 10,000 streams in one process (bench/run.sh EMBEDDED=1) RSS was 120-195
// MiB 5 s after the load with the defaults, 83-85 MiB with these, and the
// peak during the load fell from 604-641 to 569-585 MiB (bench/RESULTS.md).
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc expects.
const char* malloc_conf =
    "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
