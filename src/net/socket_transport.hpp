// The stream transport over a connected socket or a pipe (private to src/).
#pragma once

#include <exception>
#include <functional>
#include <memory>

#include <pyco/net/transport.hpp>

namespace pyco {
class event_loop;
}

namespace pyco::detail {

struct stream_transport_options {
    bool is_pipe = false;  // read(2)/write(2) instead of recv/send
    // The write end of a pipe (asyncio's _UnixWritePipeTransport; implies
    // is_pipe): nothing is read. Its readiness for reading means the read
    // end closed (epoll and io_uring report POLLERR; watched on a dup of the
    // fd, since a backend keeps add_reader-style polls and a transport's
    // operations on different fds): the transport is then
    // lost, with broken_pipe_error if bytes were still buffered. write_eof()
    // closes it (a pipe has no half-close).
    bool pipe_write_only = false;
    // Call connection_made from the loop (asyncio's call_soon) rather than
    // at once; a server's accept path does it at once, it is already a callback.
    bool defer_connection_made = true;
    // Called once, right after the protocol's connection_lost (a server
    // counts its connections with it: asyncio's Server._detach).
    std::function<void()> on_lost;
};

// Takes fd (non-blocking, close-on-exec); the transport closes it. The
// protocol's connection_made is called from the loop (asyncio's call_soon),
// then reading starts.
// Whether a transport's fatal error stays out of the exception handler
// (asyncio's _fatal_error: OSError is logged in debug mode only).
bool is_quiet_error(const std::exception_ptr& e);

std::shared_ptr<transport> make_stream_transport(event_loop& loop, int fd, std::shared_ptr<protocol> proto,
                                                 stream_transport_options options = {});

}  // namespace pyco::detail
