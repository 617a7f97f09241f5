# The allocator chat-server and chat-gateway are linked with.
#
# CHAT_ALLOCATOR=jemalloc (the default): Debian's jemalloc, configured by
# common/jemalloc_config.cc to return freed memory to the system from a
# background thread. Measured on the /chat path and after 10,000 streams
# (bench/RESULTS.md, "Allocator"): less CPU per call than glibc's malloc, and
# the memory a load took is given back within seconds; glibc keeps it in its
# arenas for good.
# CHAT_ALLOCATOR=system: glibc's malloc. Sanitizer and fuzzer builds always
# use it (ASan replaces malloc itself).
set(CHAT_ALLOCATOR "jemalloc" CACHE STRING
    "Allocator of chat-server and chat-gateway: 'jemalloc' or 'system'")
set_property(CACHE CHAT_ALLOCATOR PROPERTY STRINGS jemalloc system)
if(NOT CHAT_ALLOCATOR MATCHES "^(jemalloc|system)$")
  message(FATAL_ERROR "CHAT_ALLOCATOR must be 'jemalloc' or 'system'; got '${CHAT_ALLOCATOR}'")
endif()

# chat_link_allocator(TARGET): links TARGET (an executable) with the chosen
# allocator.
function(chat_link_allocator target)
  if(NOT CHAT_ALLOCATOR STREQUAL "jemalloc" OR CHAT_SANITIZE OR CHAT_FUZZ)
    return()
  endif()
  find_library(CHAT_JEMALLOC_LIBRARY NAMES jemalloc)
  if(NOT CHAT_JEMALLOC_LIBRARY)
    message(FATAL_ERROR "CHAT_ALLOCATOR=jemalloc needs Debian's libjemalloc-dev "
                        "(scripts/install-deps.sh installs it), or configure with "
                        "-DCHAT_ALLOCATOR=system")
  endif()
  # In the executable itself, so that jemalloc finds our malloc_conf.
  target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/common/jemalloc_config.cc)
  target_link_libraries(${target} PRIVATE ${CHAT_JEMALLOC_LIBRARY})
endfunction()
