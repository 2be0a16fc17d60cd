// The loop's low-level socket API (loop.sock_*), on the I/O seam, and
// loop.getaddrinfo / getnameinfo.
//
// Each operation is a sock_op: a future the awaiting task parks on, which
// also holds the io_op and whatever buffer or address the kernel may use.
// It is submitted once; if the backend completes it inline, the coroutine
// goes on without suspending (CPython's sock_recv tries recv() first too).
//
// Lifetime: the awaiter holds one reference; an op that went pending holds
// another for the backend, dropped at its final completion. While pending,
// the op is linked under its fd in the loop's sock_registry, so that
// closing the socket can end it, and a closing loop can free it.
//
// Cancellation. Cancelling the task cancels the future it waits on;
// sock_op::cancel does not finish the future but asks the backend to cancel
// the io_op and says yes. The future finishes at the op's final completion,
// so the task resumes only once the kernel no longer owns the buffers — a
// caller's sock_recv_into buffer included, on a backend (io_uring) that
// reads into it in the kernel. Then:
//   - nothing done (-ECANCELED): cancelled_error;
//   - a receive or an accept that got something: it is returned, and the
//     task is cancelled again so that its next await raises (the delivery
//     rule: a byte or a connection is never dropped). The same holds when
//     the cancel comes after the completion but before the task ran
//     (CPython loses the data in that race);
//   - a send or a connect that went ahead anyway: cancelled_error.
// A multishot accept may take more connections than its sock_accept needs
// (io_uring); they wait in the registry for the next sock_accept on that fd.
//
// Thread rule: the loop's thread only.
#include <pyco/event_loop.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/future_base.hpp>
#include <pyco/detail/io_backend.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/errors.hpp>
#include <pyco/future.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/threads.hpp>

#include "sock_registry.hpp"

namespace pyco {

namespace detail {

namespace {

enum class op_class : std::uint8_t {
    receive,  // what it got must reach someone (the delivery rule)
    accept,   // likewise
    other,    // send, sendto, connect
};

}  // namespace

struct sock_op final : with_result<void, future_base> {
    explicit sock_op(event_loop& loop) : with_result(loop) {}

    // The task's cancellation: ask the backend, finish at the completion.
    bool cancel(std::string msg) override {
        log_traceback_ = false;
        if (done()) return false;
        if (!in_flight) return future_base::cancel(std::move(msg));
        if (!cancel_requested) {
            cancel_requested = true;
            cancel_msg = std::move(msg);
            loop_->backend().cancel(op);
        }
        return true;
    }
    // Something that must be handed over (the delivery rule).
    bool deliverable() const noexcept { return res >= 0 && cls != op_class::other; }

    io_op op;
    sock_op* prev = nullptr;  // in its fd's record while in flight
    sock_op* next = nullptr;
    long res = 0;  // the result: >= 0 bytes or fd, < 0 -errno
    std::string cancel_msg;
    op_class cls = op_class::other;
    bool in_flight = false;
    bool cancel_requested = false;  // by the task
    bool detached = false;          // the socket was closed or released
    bool has_conn = false;          // accept: res is its connection
    bool completed_inline = false;  // submit() gave the result at once
    // What the kernel may use until the final completion.
    std::string bytes;
    sockaddr_storage addr{};
    iovec iov{};
};

namespace {

void unlink_op(event_loop& loop, sock_op& s) noexcept {
    auto& fds = loop.socks().fds;
    auto it = fds.find(s.op.fd);
    if (it == fds.end()) return;
    sock_fd_rec& rec = it->second;
    if (s.prev) {
        s.prev->next = s.next;
    } else {
        rec.ops = s.next;
    }
    if (s.next) s.next->prev = s.prev;
    s.prev = s.next = nullptr;
    if (rec.ops) return;
    if (rec.close_pending) {
        loop.backend().close_fd(it->first);
        fds.erase(it);
    } else if (rec.accepted.empty()) {
        fds.erase(it);
    }
}

void op_done(io_op& o, const io_result& r) {
    auto* s = static_cast<sock_op*>(o.user);
    event_loop& loop = s->get_loop();
    long res = r.res;
    if (o.code == io_opcode::accept) {
        if (r.res >= 0) {
            const int conn = static_cast<int>(r.res);
            if (s->detached) {
                ::close(conn);
            } else if (!s->has_conn) {
                s->has_conn = true;
                s->res = conn;
            } else {
                loop.socks().fds[o.fd].accepted.push_back(conn);
            }
            if (r.more) {
                loop.backend().cancel(o);  // one connection per sock_accept
                return;
            }
        }
        res = s->has_conn ? s->res : r.res >= 0 ? -ECANCELED : r.res;
    } else if (r.more) {
        return;  // (only accept is multishot here)
    }
    // The final completion: the kernel is done with the op.
    unlink_op(loop, *s);
    s->in_flight = false;
    s->res = res;
    if (s->cancel_requested && !s->deliverable()) {
        s->future_base::cancel(s->cancel_msg);
    } else {
        if (res == -ECANCELED && s->detached) s->res = -EBADF;  // its socket was closed
        s->set_result();
    }
    s->release();  // the backend's reference
}

intrusive_ptr<sock_op> new_op(event_loop& loop, int fd, io_opcode code, op_class cls) {
    auto s = intrusive_ptr<sock_op>::adopt(new sock_op(loop));
    s->op.on_complete = &op_done;
    s->op.user = s.get();
    s->op.fd = fd;
    s->op.code = code;
    s->cls = cls;
    return s;
}

// co_await: submit, and park the task on the op unless it completed inline.
// Gives the op's result (>= 0, or -errno).
class op_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit op_awaiter(intrusive_ptr<sock_op> s) noexcept : s_(std::move(s)) {}

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        task_ = task_base::current();
        if (task_ == nullptr) throw runtime_error("socket operations can only be awaited inside a task");
        event_loop& loop = s_->get_loop();
        if (loop.backend().submit(s_->op) == io_status::done) {
            s_->res = s_->op.result;
            s_->completed_inline = true;
            return false;
        }
        s_->add_ref();  // the backend's, until the final completion
        s_->in_flight = true;
        sock_fd_rec& rec = loop.socks().fds[s_->op.fd];
        s_->next = rec.ops;
        if (rec.ops) rec.ops->prev = s_.get();
        rec.ops = s_.get();
        try {
            task_->wait_on(*s_, h);
        } catch (...) {
            loop.backend().cancel(s_->op);
            throw;
        }
        return true;
    }
    long await_resume() {
        if (s_->completed_inline) return s_->res;
        if (task_) {
            try {
                task_->raise_throw_in();
            } catch (const cancelled_error& e) {
                // Cancelled after the op completed, before the task ran.
                if (!s_->deliverable()) throw;
                recancel(e.what());
            }
        }
        s_->raise_if_failed();  // cancelled_error when the op was cancelled
        if (s_->cancel_requested && s_->deliverable()) recancel(s_->cancel_msg);
        return s_->res;
    }
private:
    // The delivery rule: the result goes back to the task, and its
    // cancellation to its next await (as a cancel() made while it runs).
    void recancel(std::string msg) {
        task_->cancel(std::move(msg));
        task_->uncancel();  // the count stays as the first cancel() left it
    }

    intrusive_ptr<sock_op> s_;
    task_base* task_ = nullptr;
};

int take_accepted(event_loop& loop, int fd) {
    auto& fds = loop.socks().fds;
    auto it = fds.find(fd);
    if (it == fds.end() || it->second.accepted.empty()) return -1;
    const int conn = it->second.accepted.front();
    it->second.accepted.pop_front();
    if (it->second.accepted.empty() && !it->second.ops && !it->second.close_pending) fds.erase(it);
    return conn;
}

sock_address peer_of(int fd) noexcept {
    sock_address a;
    socklen_t len = sock_address::capacity();
    if (::getpeername(fd, a.data(), &len) == 0) a.resize(len);
    return a;  // empty if the peer is already gone
}

}  // namespace

sock_registry::~sock_registry() {
    // The backend is gone: nothing in flight can complete any more.
    for (auto& [fd, rec] : fds) {
        for (int conn : rec.accepted) ::close(conn);
        sock_op* op = rec.ops;
        while (op) {
            sock_op* next = op->next;
            op->prev = op->next = nullptr;
            op->in_flight = false;
            op->release();
            op = next;
        }
        if (rec.close_pending) ::close(fd);
    }
    // Open transports, servers and endpoints: mark them all, then let go
    // (the ownership rule in sock_registry.hpp).
    std::vector<std::shared_ptr<void>> refs;
    while (owned) {
        loop_owned* o = owned;
        owned = o->next;
        o->prev = o->next = nullptr;
        o->linked = false;
        refs.push_back(o->loop_closed());
    }
    refs.clear();
}

void own_by_loop(event_loop& loop, loop_owned& o) {
    if (o.linked) return;
    sock_registry& r = loop.socks();
    o.prev = nullptr;
    o.next = r.owned;
    if (r.owned) r.owned->prev = &o;
    r.owned = &o;
    o.linked = true;
}

void disown_by_loop(event_loop& loop, loop_owned& o) noexcept {
    if (!o.linked) return;
    sock_registry& r = loop.socks();
    if (o.prev) {
        o.prev->next = o.next;
    } else {
        r.owned = o.next;
    }
    if (o.next) o.next->prev = o.prev;
    o.prev = o.next = nullptr;
    o.linked = false;
}

void sock_detach_fd(event_loop& loop, int fd, bool close_it) noexcept {
    auto& fds = loop.socks().fds;
    auto it = fds.find(fd);
    if (it != fds.end()) {
        sock_fd_rec& rec = it->second;
        for (int conn : rec.accepted) ::close(conn);
        rec.accepted.clear();
        if (rec.ops) {
            for (sock_op* op = rec.ops; op; op = op->next) {
                if (!op->detached) {
                    op->detached = true;
                    loop.backend().cancel(op->op);
                }
            }
            if (close_it) rec.close_pending = true;  // the last op closes it
            return;
        }
        fds.erase(it);
    }
    if (close_it) loop.backend().close_fd(fd);
}

}  // namespace detail

using detail::io_opcode;
using detail::op_awaiter;
using detail::op_class;

detail::sock_registry& event_loop::socks() {
    if (!socks_) socks_ = std::make_unique<detail::sock_registry>();
    return *socks_;
}

int event_loop::attach(socket& sock, const char* what) {
    check_closed();
    check_thread(what);
    if (sock.fd_ < 0) throw_os_error(EBADF, what);
    if (sock.loop_ != this || sock.loop_alive_ != proxy_) {
        if (sock.loop_alive()) throw runtime_error("socket is bound to a different event loop");
        sock.loop_ = this;
        sock.loop_alive_ = proxy_;
    }
    return sock.fd_;
}

coroutine<std::string> event_loop::sock_recv(socket& sock, std::size_t n) {
    const int fd = attach(sock, "sock_recv");
    if (n == 0) co_return std::string();  // as CPython: no syscall
    auto s = detail::new_op(*this, fd, io_opcode::recv, op_class::receive);
    s->bytes.resize(n);
    s->op.buf = reinterpret_cast<std::byte*>(s->bytes.data());
    s->op.len = n;
    if (sock.type() == SOCK_STREAM) s->op.flags = detail::io_flag_stream;
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) throw_os_error(static_cast<int>(-r), "recv");
    const auto got = static_cast<std::size_t>(r);
    if (got == n) co_return std::move(s->bytes);
    co_return std::string(s->bytes.data(), got);  // not n bytes of capacity for a few
}

coroutine<std::size_t> event_loop::sock_recv_into(socket& sock, std::span<std::byte> buf) {
    const int fd = attach(sock, "sock_recv_into");
    if (buf.empty()) co_return 0;
    auto s = detail::new_op(*this, fd, io_opcode::recv, op_class::receive);
    s->op.buf = buf.data();
    s->op.len = buf.size();
    if (sock.type() == SOCK_STREAM) s->op.flags = detail::io_flag_stream;
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) throw_os_error(static_cast<int>(-r), "recv_into");
    co_return static_cast<std::size_t>(r);
}

namespace {

detail::intrusive_ptr<detail::sock_op> recvfrom_op(event_loop& loop, int fd, std::byte* buf, std::size_t n) {
    auto s = detail::new_op(loop, fd, io_opcode::recvfrom, op_class::receive);
    s->op.buf = buf;
    s->op.len = n;
    s->op.addr = reinterpret_cast<sockaddr*>(&s->addr);
    s->op.addrlen = sizeof s->addr;
    return s;
}

sock_address sender_of(const detail::sock_op& s) {
    return sock_address(reinterpret_cast<const sockaddr*>(&s.addr), s.op.addrlen);
}

}  // namespace

coroutine<std::pair<std::string, sock_address>> event_loop::sock_recvfrom(socket& sock, std::size_t n) {
    const int fd = attach(sock, "sock_recvfrom");
    std::string buf(n, '\0');
    auto s = recvfrom_op(*this, fd, nullptr, n);
    s->bytes = std::move(buf);
    s->op.buf = reinterpret_cast<std::byte*>(s->bytes.data());
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) throw_os_error(static_cast<int>(-r), "recvfrom");
    std::pair<std::string, sock_address> out(std::string(s->bytes.data(), static_cast<std::size_t>(r)),
                                             sender_of(*s));
    co_return out;
}

coroutine<std::pair<std::size_t, sock_address>> event_loop::sock_recvfrom_into(socket& sock,
                                                                               std::span<std::byte> buf) {
    const int fd = attach(sock, "sock_recvfrom_into");
    auto s = recvfrom_op(*this, fd, buf.data(), buf.size());
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) throw_os_error(static_cast<int>(-r), "recvfrom_into");
    std::pair<std::size_t, sock_address> out(static_cast<std::size_t>(r), sender_of(*s));
    co_return out;
}

coroutine<void> event_loop::sock_sendall(socket& sock, std::span<const std::byte> data) {
    int fd = attach(sock, "sock_sendall");
    std::size_t sent = 0;
    while (sent < data.size()) {
        auto s = detail::new_op(*this, fd, io_opcode::send, op_class::other);
        s->iov.iov_base = const_cast<std::byte*>(data.data() + sent);
        s->iov.iov_len = data.size() - sent;
        s->op.iov = &s->iov;
        s->op.iovcnt = 1;
        op_awaiter aw(s);
        const long r = co_await aw;
        if (r < 0) throw_os_error(static_cast<int>(-r), "send");
        sent += static_cast<std::size_t>(r);
        fd = sock.fileno();  // closed meanwhile: EBADF, never another fd
        if (fd < 0 && sent < data.size()) throw_os_error(EBADF, "send");
    }
}

coroutine<void> event_loop::sock_sendall(socket& sock, std::string_view data) {
    return sock_sendall(sock, std::as_bytes(std::span<const char>(data.data(), data.size())));
}

coroutine<std::size_t> event_loop::sock_sendto(socket& sock, std::span<const std::byte> data, sock_address to) {
    const int fd = attach(sock, "sock_sendto");
    auto s = detail::new_op(*this, fd, io_opcode::sendto, op_class::other);
    s->iov.iov_base = const_cast<std::byte*>(data.data());
    s->iov.iov_len = data.size();
    s->op.iov = &s->iov;
    s->op.iovcnt = 1;
    if (!to.empty()) {
        std::memcpy(&s->addr, to.data(), to.size());
        s->op.addr = reinterpret_cast<sockaddr*>(&s->addr);
        s->op.addrlen = to.size();
    }
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) throw_os_error(static_cast<int>(-r), "sendto");
    co_return static_cast<std::size_t>(r);
}

coroutine<std::size_t> event_loop::sock_sendto(socket& sock, std::string_view data, sock_address to) {
    return sock_sendto(sock, std::as_bytes(std::span<const char>(data.data(), data.size())), std::move(to));
}

coroutine<std::pair<socket, sock_address>> event_loop::sock_accept(socket& sock) {
    const int fd = attach(sock, "sock_accept");
    // Read now: the listener may be closed while we wait.
    const int family = sock.family();
    const int type = sock.type();
    const int proto = sock.proto();
    int conn = detail::take_accepted(*this, fd);
    if (conn < 0) {
        auto s = detail::new_op(*this, fd, io_opcode::accept, op_class::accept);
        op_awaiter aw(s);
        const long r = co_await aw;
        if (r < 0) throw_os_error(static_cast<int>(-r), "accept");
        conn = static_cast<int>(r);
    }
    // The seam's accept gives no address: ask for it (empty if the peer is
    // already gone). The fd is non-blocking and close-on-exec already.
    std::pair<socket, sock_address> out(socket(conn, family, type, proto), detail::peer_of(conn));
    co_return out;
}

coroutine<void> event_loop::sock_connect(socket& sock, sock_address to) {
    const int fd = attach(sock, "sock_connect");
    auto s = detail::new_op(*this, fd, io_opcode::connect, op_class::other);
    std::memcpy(&s->addr, to.data(), to.size());
    s->op.addr = reinterpret_cast<sockaddr*>(&s->addr);
    s->op.addrlen = to.size();
    op_awaiter aw(s);
    const long r = co_await aw;
    if (r < 0) {
        // CPython: connect()'s own error as is; one found later names the
        // address. (Asked of the op, not of `aw`: GCC 12 awaits a copy of
        // an lvalue awaiter that await_transform returns by reference.)
        if (s->completed_inline) throw_os_error(static_cast<int>(-r), "connect");
        throw_os_error(static_cast<int>(-r), "Connect call failed " + to.to_string());
    }
}

// --- name resolution ---

namespace {

// asyncio's _ipaddr_info: an IP literal and a numeric port need no lookup.
// Flags that change what getaddrinfo would answer for a literal send it to
// the slow path.
std::optional<std::vector<addrinfo_entry>> numeric_addrinfo(const std::string& host, const std::string& port,
                                                            int family, int type, int proto, int flags) {
    if (host.empty() || host.find('%') != std::string::npos) return std::nullopt;
    if (flags & (AI_CANONNAME | AI_V4MAPPED | AI_ALL | AI_ADDRCONFIG)) return std::nullopt;
    int want = 0;
    if (type == SOCK_STREAM) {
        want = IPPROTO_TCP;
    } else if (type == SOCK_DGRAM) {
        want = IPPROTO_UDP;
    } else {
        return std::nullopt;
    }
    if (proto != 0 && proto != want) return std::nullopt;
    unsigned long portnum = 0;
    if (!port.empty()) {
        if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
        portnum = std::stoul(port);
        if (portnum > 65535) return std::nullopt;
    }
    const auto p = static_cast<std::uint16_t>(portnum);
    std::vector<addrinfo_entry> out(1);
    addrinfo_entry& e = out[0];
    e.type = type;
    e.proto = want;
    in_addr a4{};
    in6_addr a6{};
    if ((family == AF_UNSPEC || family == AF_INET) && ::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
        e.family = AF_INET;
        e.address = sock_address::ipv4(host, p);
        return out;
    }
    if ((family == AF_UNSPEC || family == AF_INET6) && ::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
        e.family = AF_INET6;
        e.address = sock_address::ipv6(host, p);
        return out;
    }
    return std::nullopt;
}

[[noreturn]] void throw_gai(int rc, int err, const char* what) {
    if (rc == EAI_SYSTEM) throw_os_error(err, what);  // as CPython
    throw gaierror(rc, what);
}

std::vector<addrinfo_entry> blocking_getaddrinfo(const std::string& host, const std::string& port, int family,
                                                 int type, int proto, int flags) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = type;
    hints.ai_protocol = proto;
    hints.ai_flags = flags;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.empty() ? nullptr : port.c_str(),
                                 &hints, &res);
    if (rc != 0) throw_gai(rc, errno, "getaddrinfo");
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, &::freeaddrinfo);
    std::vector<addrinfo_entry> out;
    for (const addrinfo* p = res; p != nullptr; p = p->ai_next) {
        addrinfo_entry e;
        e.family = p->ai_family;
        e.type = p->ai_socktype;
        e.proto = p->ai_protocol;
        if (p->ai_canonname) e.canonname = p->ai_canonname;
        e.address = sock_address(p->ai_addr, p->ai_addrlen);
        out.push_back(std::move(e));
    }
    return out;
}

std::pair<std::string, std::string> blocking_getnameinfo(const sock_address& addr, int flags) {
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    const int rc = ::getnameinfo(addr.data(), addr.size(), host, sizeof host, serv, sizeof serv, flags);
    if (rc != 0) throw_gai(rc, errno, "getnameinfo");
    return {host, serv};
}

}  // namespace

coroutine<std::vector<addrinfo_entry>> event_loop::getaddrinfo(std::string host, std::string port, int family,
                                                               int type, int proto, int flags) {
    check_closed();
    check_thread("getaddrinfo");
    if (auto fast = numeric_addrinfo(host, port, family, type, proto, flags)) co_return std::move(*fast);
    auto job = [host = std::move(host), port = std::move(port), family, type, proto, flags] {
        return blocking_getaddrinfo(host, port, family, type, proto, flags);
    };
    auto fut = run_in_executor(std::move(job));
    std::vector<addrinfo_entry> out = co_await fut;
    co_return out;
}

coroutine<std::vector<addrinfo_entry>> event_loop::getaddrinfo(std::string host, int port, int family, int type,
                                                               int proto, int flags) {
    return getaddrinfo(std::move(host), std::to_string(port), family, type, proto, flags);
}

coroutine<std::pair<std::string, std::string>> event_loop::getnameinfo(sock_address addr, int flags) {
    check_closed();
    check_thread("getnameinfo");
    if ((flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV)) co_return blocking_getnameinfo(addr, flags);
    auto job = [addr, flags] { return blocking_getnameinfo(addr, flags); };
    auto fut = run_in_executor(std::move(job));
    std::pair<std::string, std::string> out = co_await fut;
    co_return out;
}

}  // namespace pyco
