// Private to src/: what a loop knows of the sockets its sock_* operations
// use (see sock_ops.cpp), and of the transports, servers and datagram
// endpoints open on it.
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
//
// The ownership rule of open transports, servers and datagram endpoints
// (loop_owned): each holds a shared_ptr to itself while the backend may
// call it back (an op in flight, connection_lost to run), so a user who
// drops every handle does not pull memory from under the backend. That
// self-reference is broken in one of two ways only:
//   - normally, once connection_lost has run and no op is live (the object
//     unlinks itself from `owned`, closes its fd through the backend, and
//     drops the reference);
//   - or when the loop closes first: the registry, destroyed after the
//     backend, calls loop_closed() on every object still linked. Each
//     closes its fd directly (the backend is gone), marks itself closed so
//     that whatever the user still calls on it touches no loop, and hands
//     its self-reference back; the references are dropped only after every
//     object is marked, since dropping one may run a protocol's destructor
//     that calls into another. connection_lost is not called, as CPython's
//     loop.close() does not call it: the objects are just garbage.
#pragma once

#include <deque>
#include <memory>
#include <unordered_map>

#include <pyco/event_loop.hpp>

namespace pyco::detail {

struct sock_op;

struct sock_fd_rec {
    sock_op* ops = nullptr;  // in flight, linked through sock_op::prev/next
    std::deque<int> accepted;
    bool close_pending = false;
};

// An object that keeps itself alive while open (see the ownership rule).
struct loop_owned {
    // The loop closed while this was linked: close the fd without the
    // backend, become inert, and return the self-reference.
    virtual std::shared_ptr<void> loop_closed() noexcept = 0;
    loop_owned* prev = nullptr;
    loop_owned* next = nullptr;
    bool linked = false;

protected:
    virtual ~loop_owned() = default;
};

struct sock_registry {
    std::unordered_map<int, sock_fd_rec> fds;
    loop_owned* owned = nullptr;  // doubly linked through prev/next
    sock_registry() = default;
    sock_registry(const sock_registry&) = delete;
    sock_registry& operator=(const sock_registry&) = delete;
    ~sock_registry();
};

// pyco::socket::close() / release() of a socket bound to a live loop: its
// operations in flight end with EBADF; queued connections are closed; the
// fd is closed (close_it) through the backend once nothing is in flight.
void sock_detach_fd(event_loop& loop, int fd, bool close_it) noexcept;

// Link o into (out of) loop's open objects; both O(1), no allocation.
void own_by_loop(event_loop& loop, loop_owned& o);
void disown_by_loop(event_loop& loop, loop_owned& o) noexcept;

}  // namespace pyco::detail
