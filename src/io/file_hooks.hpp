// src/io/file_hooks.hpp — the page-cache fast path's switches and counts
// (src/io/file.cpp), private: tests flip them to take both paths.
#pragma once

#include <cstdint>

namespace pyco::detail {

// The fast path's switches and counts, for tests: one set per thread (the
// loop's), read and changed only there.
struct file_nowait_hooks {
    bool enabled = true;                        // false: never try (as if nothing were cached)
    std::uint64_t cached_below = UINT64_MAX;    // bytes at and past this offset count as not cached
    std::uint64_t taken = 0;                    // chunks the fast path gave (bytes or EOF)
    std::uint64_t refused = 0;                  // tries that found nothing cached (or failed)
    std::uint64_t executor = 0;                 // chunks read on the executor (epoll)
};
file_nowait_hooks& file_nowait_hooks_here() noexcept;

}  // namespace pyco::detail
