// pyco/detail/io_backend.hpp — the seam between the loop and the kernel.
//
// The loop asks four things of a backend (as libuv's uv__io_start/stop/poll):
// set the interest in an fd, wait for readiness with a timeout, wake a
// waiting backend from another thread, and say its name. Everything above
// this seam is backend-agnostic; epoll is the first backend, io_uring slots
// in behind the same four calls.
//
// Thread rule: set_interest and wait are called only on the loop's thread;
// wakeup() may be called from any thread and from a signal handler.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace pyco::detail {

enum io_interest : unsigned { io_none = 0, io_read = 1, io_write = 2 };

struct io_event {
    int fd;
    unsigned ready;  // io_read | io_write; an error or hang-up sets both
};

class io_backend {
public:
    virtual ~io_backend() = default;
    virtual const char* name() const noexcept = 0;
    // Change fd's interest from `before` to `after` (io_none: not watched).
    virtual void set_interest(int fd, unsigned before, unsigned after) = 0;
    // Wait until an fd is ready, wakeup() is called, or the timeout passes
    // (nullopt: no timeout). Appends what became ready to `out`.
    virtual void wait(std::optional<std::chrono::nanoseconds> timeout, std::vector<io_event>& out) = 0;
    virtual void wakeup() noexcept = 0;
};

// The backend the loop uses: epoll.
std::unique_ptr<io_backend> make_epoll_backend();

}  // namespace pyco::detail
