// Private to src/: what a loop knows of the sockets its sock_* operations
// use (see sock_ops.cpp).
//
// Per fd: the operations in flight (each holds the backend's reference to
// itself until its final completion), connections a multishot accept took
// after its sock_accept already had one (the next sock_accept gets them
// first), and whether the socket was closed while operations were in flight
// (the last one to finish closes the fd).
//
// Invariant: a record exists only while it has operations in flight, queued
// connections, or a pending close. The loop destroys the registry after its
// backend, when no completion can come any more: what is still in flight is
// freed and pending closes are done then.
#pragma once

#include <deque>
#include <unordered_map>

#include <pyco/event_loop.hpp>

namespace pyco::detail {

struct sock_op;

struct sock_fd_rec {
    sock_op* ops = nullptr;  // in flight, linked through sock_op::prev/next
    std::deque<int> accepted;
    bool close_pending = false;
};

struct sock_registry {
    std::unordered_map<int, sock_fd_rec> fds;
    sock_registry() = default;
    sock_registry(const sock_registry&) = delete;
    sock_registry& operator=(const sock_registry&) = delete;
    ~sock_registry();
};

// pyco::socket::close() / release() of a socket bound to a live loop: its
// operations in flight end with EBADF; queued connections are closed; the
// fd is closed (close_it) through the backend once nothing is in flight.
void sock_detach_fd(event_loop& loop, int fd, bool close_it) noexcept;

}  // namespace pyco::detail
