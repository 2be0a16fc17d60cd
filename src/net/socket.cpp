#include <pyco/net/socket.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>

#include "sock_registry.hpp"

namespace pyco {

namespace {

constexpr int type_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;

int query_int(int fd, int level, int option, const char* what) {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, level, option, &v, &len) < 0) throw_os_error(errno, what);
    return v;
}

}  // namespace

socket::socket(int family, int type, int proto) {
    const int fd = ::socket(family, type | type_flags, proto);
    if (fd < 0) throw_os_error(errno, "socket");
    fd_ = fd;
    family_ = family;
    type_ = type & ~type_flags;
    proto_ = proto;
}

socket socket::adopt(int fd) {
    if (fd < 0) throw value_error("negative file descriptor");
    const int family = query_int(fd, SOL_SOCKET, SO_DOMAIN, "getsockopt");
    const int type = query_int(fd, SOL_SOCKET, SO_TYPE, "getsockopt");
    const int proto = query_int(fd, SOL_SOCKET, SO_PROTOCOL, "getsockopt");
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) throw_os_error(errno, "fcntl");
    if (!(fl & O_NONBLOCK) && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_os_error(errno, "fcntl");
    const int fdfl = ::fcntl(fd, F_GETFD);
    if (fdfl < 0) throw_os_error(errno, "fcntl");
    if (!(fdfl & FD_CLOEXEC) && ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) throw_os_error(errno, "fcntl");
    return socket(fd, family, type, proto);
}

bool socket::loop_alive() const noexcept {
    try {
        return loop_ != nullptr && loop_alive_ && !loop_alive_->closed();
    } catch (...) {
        return false;  // a mutex that cannot be locked: treat the loop as gone
    }
}

event_loop* socket::used_by() const noexcept { return loop_alive() ? loop_ : nullptr; }

int socket::release() noexcept {
    const int fd = fd_;
    if (fd >= 0 && loop_alive()) detail::sock_detach_fd(*loop_, fd, false);
    fd_ = -1;
    loop_ = nullptr;
    loop_alive_.reset();
    return fd;
}

void socket::close() noexcept {
    if (fd_ < 0) return;
    const int fd = fd_;
    fd_ = -1;
    if (loop_alive()) {
        detail::sock_detach_fd(*loop_, fd, true);
    } else {
        ::close(fd);
    }
    loop_ = nullptr;
    loop_alive_.reset();
}

void socket::bind(const sock_address& addr) {
    if (::bind(fd_, addr.data(), addr.size()) < 0) throw_os_error(errno, "bind");
}

void socket::listen(int backlog) {
    if (::listen(fd_, backlog < 0 ? 0 : backlog) < 0) throw_os_error(errno, "listen");
}

void socket::shutdown(int how) {
    if (::shutdown(fd_, how) < 0) throw_os_error(errno, "shutdown");
}

sock_address socket::getsockname() const {
    sock_address a;
    socklen_t len = sock_address::capacity();
    if (::getsockname(fd_, a.data(), &len) < 0) throw_os_error(errno, "getsockname");
    a.resize(len);
    return a;
}

sock_address socket::getpeername() const {
    sock_address a;
    socklen_t len = sock_address::capacity();
    if (::getpeername(fd_, a.data(), &len) < 0) throw_os_error(errno, "getpeername");
    a.resize(len);
    return a;
}

void socket::setsockopt(int level, int option, int value) {
    if (::setsockopt(fd_, level, option, &value, sizeof value) < 0) throw_os_error(errno, "setsockopt");
}

int socket::getsockopt(int level, int option) const { return query_int(fd_, level, option, "getsockopt"); }

void socket::set_reuse_address(bool on) { setsockopt(SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0); }
void socket::set_reuse_port(bool on) { setsockopt(SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0); }
void socket::set_nodelay(bool on) { setsockopt(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

std::pair<socket, socket> socket_pair(int family, int type, int proto) {
    int fds[2];
    if (::socketpair(family, type | type_flags, proto, fds) < 0) throw_os_error(errno, "socketpair");
    const int t = type & ~type_flags;
    return {socket(fds[0], family, t, proto), socket(fds[1], family, t, proto)};
}

}  // namespace pyco
