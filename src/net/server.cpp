// asyncio.Server over the operation seam (see include/pyco/net/server.hpp).
//
// Invariants:
//   - `closed` is CPython's `_sockets is None`; `woken` is `_waiters is
//     None`: set once, when closed and active == 0, in either order.
//   - A listener's accept op, once submitted, is finished only by its final
//     completion; its fd is closed after that (never while the backend may
//     still accept on it). The state keeps itself alive (self_) while any
//     listener op is live, so a dropped handle does not pull the memory from
//     under the backend; a server whose handles are all dropped keeps
//     serving, as an asyncio server does while its loop watches its sockets.
//   - Each accepted transport holds the state (its on_lost closure) until
//     its connection_lost: that is what `active` counts.
//   - While `self` is held the state is linked in its loop's registry; a
//     loop closed first closes the listening fds and lets go of it
//     (loop_closed: the ownership rule of sock_registry.hpp). CPython's
//     loop.close() does not close servers either way: nothing is called.
#include <pyco/net/server.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <unordered_map>

#include <pyco/detail/faults.hpp>
#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "sock_registry.hpp"
#include "socket_transport.hpp"

namespace pyco::detail {

namespace {
constexpr auto accept_retry_delay = std::chrono::seconds(1);  // asyncio's ACCEPT_RETRY_DELAY
}

struct server_state final : std::enable_shared_from_this<server_state>, loop_owned {
    struct listener {
        server_state* owner = nullptr;
        int fd = -1;
        int family = AF_UNSPEC;
        io_op op;
        bool live = false;
        handle retry;
    };

    event_loop* loop = nullptr;
    protocol_factory factory;
    int backlog = 100;
    std::vector<std::unique_ptr<listener>> listeners;
    std::string unix_path;  // removed at close (cleanup_socket)...
    ino_t unix_ino = 0;     // ...if it is still our socket (3.13 compares st_ino)
    std::unordered_map<transport*, std::weak_ptr<transport>> clients;
    std::size_t active = 0;
    std::vector<future<void>> waiters;
    std::optional<future<void>> serving_forever;
    std::shared_ptr<server_state> self;  // while a listener op is live
    bool serving = false;
    bool listening = false;
    bool closed = false;
    bool woken = false;

    std::string repr() const {
        std::string r = "<Server sockets=(";
        bool first = true;
        for (const auto& l : listeners) {
            if (l->fd < 0) continue;
            if (!first) r += ", ";
            first = false;
            r += "<socket fd=" + std::to_string(l->fd) + ">";
        }
        return r + ")>";
    }

    void start() {
        if (serving || closed) return;
        serving = true;
        self = shared_from_this();
        own_by_loop(*loop, *this);
        if (!listening) {
            for (auto& l : listeners) {
                if (::listen(l->fd, backlog) != 0) throw_os_error(errno, "listen");
            }
            listening = true;
        }
        for (auto& l : listeners) arm(*l);
    }

    void arm(listener& l) {
        if (l.live || closed) return;
        l.op = io_op{};
        l.op.on_complete = &on_accept;
        l.op.user = &l;
        l.op.fd = l.fd;
        l.op.code = io_opcode::accept;
        l.live = true;
        loop->backend().submit(l.op);  // multishot: never inline
    }

    static void on_accept(io_op& op, const io_result& r) {
        auto& l = *static_cast<listener*>(op.user);
        server_state& s = *l.owner;
        std::shared_ptr<server_state> keep = s.shared_from_this();
        if (!r.more) l.live = false;
        if (r.res >= 0) {
            s.accepted(l, static_cast<int>(r.res));
        } else if (r.res != -ECANCELED) {
            s.accept_failed(l, static_cast<int>(-r.res));
        }
        if (!r.more) s.listener_done(l);
    }

    void accepted(listener& l, int fd) {
        if (closed) {
            // Accepted by the kernel (io_uring's multishot accept) after the
            // server closed: reset it, as closing the listening socket resets
            // the connections still in its backlog. A plain close would send
            // FIN, and the client would read a clean EOF for its request.
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            ::close(fd);
            return;
        }
        if (l.family == AF_INET || l.family == AF_INET6) {
            int one = 1;  // asyncio sets TCP_NODELAY on every TCP transport
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        std::shared_ptr<protocol> proto;
        try {
            proto = factory();
            if (!proto) throw type_error("protocol factory returned no protocol");
        } catch (...) {
            ::close(fd);
            loop->call_exception_handler(
                {"Error on transport creation for incoming connection", std::current_exception(), {}, {}});
            return;
        }
        ++active;
        std::weak_ptr<server_state> weak = weak_from_this();
        stream_transport_options o;
        o.defer_connection_made = false;
        // Filled in after the transport exists (its address is the key).
        auto key = std::make_shared<transport*>(nullptr);
        o.on_lost = [weak, key] {
            if (auto s = weak.lock()) s->detach(*key);
        };
        std::shared_ptr<transport> t = make_stream_transport(*loop, fd, std::move(proto), std::move(o));
        *key = t.get();
        clients.emplace(t.get(), t);
    }

    void accept_failed(listener& l, int err) {
        const bool resources = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
        loop->call_exception_handler({resources ? "socket.accept() out of system resource" : "Error on accept()",
                                      make_os_error(err, "accept"), {}, {}});
        if (closed) return;
        // Pause, then accept again: a full fd table must not make us spin.
        listener* lp = &l;
        std::weak_ptr<server_state> weak = weak_from_this();
        event_loop::duration delay = accept_retry_delay;
        if (fault_injector* f = active_faults()) delay = f->config().accept_retry_delay;
        l.retry = loop->call_later(delay, [weak, lp] {
            if (auto s = weak.lock()) {
                if (s->serving) s->arm(*lp);
            }
        });
    }

    void listener_done(listener& l) {
        if (closed && l.fd >= 0) {
            loop->backend().close_fd(l.fd);
            l.fd = -1;
        }
        release_if_idle();  // the caller holds `keep`
    }

    // The self-reference goes once nothing can call back into the state:
    // not serving (a paused accept comes back through a timer) and no op live.
    void release_if_idle() {
        if (serving) return;
        for (auto& x : listeners) {
            if (x->live) return;
        }
        disown_by_loop(*loop, *this);
        self.reset();
    }

    // The loop closed (its backend is gone) while this was serving.
    std::shared_ptr<void> loop_closed() noexcept override {
        closed = true;
        serving = false;
        for (auto& l : listeners) {
            l->live = false;
            if (l->fd >= 0) ::close(l->fd);
            l->fd = -1;
        }
        return std::move(self);
    }

    void detach(transport* t) {
        clients.erase(t);
        if (active > 0) --active;
        if (active == 0 && closed) wakeup();
    }

    void wakeup() {
        if (woken) return;
        woken = true;
        std::vector<future<void>> ws = std::move(waiters);
        waiters.clear();
        for (future<void>& w : ws) {
            if (!w.done()) w.set_result();
        }
    }

    void close() {
        if (closed) return;
        std::shared_ptr<server_state> keep = shared_from_this();
        closed = true;
        serving = false;
        for (auto& l : listeners) {
            l->retry.cancel();
            if (l->live) {
                // Stop listening now, as asyncio's close() does by closing the
                // socket: a connection attempt from here on is refused. The
                // fd itself is closed at the accept's final completion.
                ::shutdown(l->fd, SHUT_RDWR);
                loop->backend().cancel(l->op);
            } else if (l->fd >= 0) {
                loop->backend().close_fd(l->fd);
                l->fd = -1;
            }
        }
        if (!unix_path.empty()) {
            // Someone may have removed it, or replaced it with their own.
            struct stat st{};
            if (::stat(unix_path.c_str(), &st) == 0 && st.st_ino == unix_ino) ::unlink(unix_path.c_str());
            unix_path.clear();
        }
        if (serving_forever && !serving_forever->done()) serving_forever->cancel();
        serving_forever.reset();
        if (active == 0) wakeup();
        release_if_idle();
    }

    ~server_state() {
        for (auto& l : listeners) {
            if (l->fd >= 0 && !l->live) ::close(l->fd);
        }
    }
};

}  // namespace pyco::detail

namespace pyco {

event_loop& server::get_loop() const { return *s_->loop; }
bool server::is_serving() const noexcept { return s_ && s_->serving && !s_->closed; }
std::string server::repr() const { return s_ ? s_->repr() : "<Server>"; }

coroutine<void> server::start_serving() {
    std::shared_ptr<detail::server_state> s = s_;
    s->start();
    co_await sleep(std::chrono::seconds(0));  // as asyncio: let the loop run once
}

coroutine<void> server::serve_forever() {
    std::shared_ptr<detail::server_state> s = s_;
    if (s->serving_forever) throw runtime_error("server " + s->repr() + " is already being awaited on serve_forever()");
    if (s->closed) throw runtime_error("server " + s->repr() + " is closed");
    s->start();
    future<void> fut = create_future<void>(*s->loop);
    s->serving_forever = fut;
    bool cancelled = false;
    try {
        co_await fut;
    } catch (const cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        // asyncio: close, wait closed, and re-raise the cancellation.
        s->serving_forever.reset();
        s->close();
        co_await server(s).wait_closed();
        throw cancelled_error();
    }
}

void server::close() {
    if (s_) s_->close();
}

coroutine<void> server::wait_closed() {
    std::shared_ptr<detail::server_state> s = s_;
    if (s->woken) co_return;
    future<void> w = create_future<void>(*s->loop);
    s->waiters.push_back(w);
    co_await w;
}

void server::close_clients() {
    std::vector<std::shared_ptr<transport>> ts;
    for (auto& [p, w] : s_->clients) {
        if (auto t = w.lock()) ts.push_back(std::move(t));
    }
    for (auto& t : ts) t->close();
}

void server::abort_clients() {
    std::vector<std::shared_ptr<transport>> ts;
    for (auto& [p, w] : s_->clients) {
        if (auto t = w.lock()) ts.push_back(std::move(t));
    }
    for (auto& t : ts) t->abort();
}

std::vector<sock_address> server::sockets() const {
    std::vector<sock_address> out;
    if (!s_ || s_->closed) return out;
    for (const auto& l : s_->listeners) {
        sock_address a;
        socklen_t len = sock_address::capacity();
        if (::getsockname(l->fd, a.data(), &len) == 0) {
            a.resize(len);
            out.push_back(a);
        }
    }
    return out;
}

std::vector<int> server::fds() const {
    std::vector<int> out;
    if (!s_ || s_->closed) return out;
    for (const auto& l : s_->listeners) out.push_back(l->fd);
    return out;
}

coroutine<bool> server::aexit(std::exception_ptr) {
    std::shared_ptr<detail::server_state> s = s_;
    s->close();
    co_await server(s).wait_closed();
    co_return false;
}

server detail::make_server(event_loop& loop, protocol_factory factory, std::vector<int> fds, int backlog,
                           std::string unix_path_to_remove) {
    auto s = std::make_shared<server_state>();
    s->loop = &loop;
    s->factory = std::move(factory);
    s->backlog = backlog;
    s->unix_path = std::move(unix_path_to_remove);
    if (!s->unix_path.empty()) {
        struct stat st{};
        if (::stat(s->unix_path.c_str(), &st) == 0) {
            s->unix_ino = st.st_ino;
        } else {
            s->unix_path.clear();  // nothing of ours to remove
        }
    }
    for (int fd : fds) {
        auto l = std::make_unique<server_state::listener>();
        l->owner = s.get();
        l->fd = fd;
        sock_address a;
        socklen_t len = sock_address::capacity();
        if (::getsockname(fd, a.data(), &len) == 0) {
            a.resize(len);
            l->family = a.family();
        }
        s->listeners.push_back(std::move(l));
    }
    return server(std::move(s));
}

}  // namespace pyco
