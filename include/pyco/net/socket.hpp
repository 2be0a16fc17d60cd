// pyco/net/socket.hpp — an owning socket: pyco::socket (Python's
// socket.socket, always non-blocking).
//
// A socket owns its fd (move-only; the destructor closes it) and is always
// non-blocking and close-on-exec: the constructor, adopt() and accepted
// sockets all make it so. Python's blocking calls (connect, recv, ...) have
// no counterpart here: the loop's sock_* operations do the waiting
// (<pyco/event_loop.hpp>), and transports take a socket over.
//
// OS failures are std::system_error carrying errno (connection_reset_error
// and its siblings where Python names one, <pyco/net/os_error.hpp>); what()
// is "<call>: <strerror>", e.g. "bind: Address already in use". Using a
// closed socket fails as the kernel does, with EBADF.
//
// The loop rule. A socket that a loop's sock_* operations have used is
// bound to that loop: the epoll backend keeps the fd registered, so close()
// goes through the loop (its backend forgets the fd, then closes it). Until
// it is closed or released the socket belongs to that loop's thread, and
// another live loop's operations on it raise runtime_error. Closing a socket
// while operations are in flight on it ends them: each raises
// std::system_error(EBADF), and the fd itself is closed once the last has
// finished (never under an operation the kernel may still be doing). Once
// the loop is closed, the socket forgets it and closes the fd directly.
//
// release() (Python's detach()) gives the fd away and forgets the loop; if
// the loop's operations used it, the fd stays registered in that loop's
// backend, so whoever takes it closes it with loop.backend().close_fd(fd)
// on that loop's thread (as pyco's transports do) — see used_by().
#pragma once

#include <sys/socket.h>

#include <memory>
#include <utility>

#include <pyco/net/address.hpp>

namespace pyco {

class event_loop;
namespace detail {
class loop_proxy;
}

class socket;

// socket.socketpair(family, type, proto): two connected sockets.
std::pair<socket, socket> socket_pair(int family = AF_UNIX, int type = SOCK_STREAM, int proto = 0);

class socket {
public:
    // Python's listen() default: min(SOMAXCONN, 128).
    static constexpr int default_backlog = 128;

    // No socket (fileno() == -1).
    socket() noexcept = default;
    // socket.socket(family, type, proto): non-blocking and close-on-exec.
    explicit socket(int family, int type = SOCK_STREAM, int proto = 0);
    // socket.socket(fileno=fd): takes fd over, making it non-blocking and
    // close-on-exec, and learns its family, type and protocol. On failure
    // (ENOTSOCK, ...) it throws and fd stays the caller's.
    static socket adopt(int fd);

    socket(socket&& o) noexcept { swap(o); }
    socket& operator=(socket&& o) noexcept {
        if (this != &o) {
            socket(std::move(o)).swap(*this);
        }
        return *this;
    }
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    ~socket() { close(); }

    // -1 once closed or released, as Python's fileno().
    int fileno() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    // socket.detach(): the fd is the caller's now (see the loop rule).
    int release() noexcept;
    // Closes the fd (through its loop, see the loop rule); errors are
    // ignored, as the fd is gone either way. Twice is harmless.
    void close() noexcept;

    int family() const noexcept { return family_; }
    int type() const noexcept { return type_; }  // without SOCK_NONBLOCK/SOCK_CLOEXEC
    int proto() const noexcept { return proto_; }
    // The loop whose operations used this socket, or null.
    event_loop* used_by() const noexcept;

    void bind(const sock_address& addr);
    // A negative backlog counts as 0, as in Python.
    void listen(int backlog = default_backlog);
    void shutdown(int how);  // SHUT_RD, SHUT_WR, SHUT_RDWR
    sock_address getsockname() const;
    sock_address getpeername() const;

    void setsockopt(int level, int option, int value);
    int getsockopt(int level, int option) const;
    void set_reuse_address(bool on = true);  // SO_REUSEADDR
    void set_reuse_port(bool on = true);     // SO_REUSEPORT
    void set_nodelay(bool on = true);        // TCP_NODELAY (TCP only)

    void swap(socket& o) noexcept {
        std::swap(fd_, o.fd_);
        std::swap(family_, o.family_);
        std::swap(type_, o.type_);
        std::swap(proto_, o.proto_);
        std::swap(loop_, o.loop_);
        std::swap(loop_alive_, o.loop_alive_);
    }

private:
    friend class event_loop;  // binds the socket to itself (sock_* operations)
    friend std::pair<socket, socket> socket_pair(int family, int type, int proto);
    socket(int fd, int family, int type, int proto) noexcept
        : fd_(fd), family_(family), type_(type), proto_(proto) {}
    // The loop is alive while its proxy is not closed.
    bool loop_alive() const noexcept;

    int fd_ = -1;
    int family_ = 0;
    int type_ = 0;
    int proto_ = 0;
    event_loop* loop_ = nullptr;
    std::shared_ptr<detail::loop_proxy> loop_alive_;
};


}  // namespace pyco
