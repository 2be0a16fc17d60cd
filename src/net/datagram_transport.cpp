// The datagram transport (asyncio's _SelectorDatagramTransport) over the
// operation seam, and loop.create_datagram_endpoint.
//
// Invariants:
//   - rop_ (one recvfrom into rbuf_) is live while receiving; it is
//     resubmitted after each datagram, at most max_per_turn times inline in
//     one callback, so a flood cannot starve the loop;
//   - wop_ (a sendto of the oldest buffered datagram) is live while a send
//     waits; the datagram stays at the front of sendq_ (its bytes do not
//     move) until its completion;
//   - the fd is closed once connection_lost ran and neither op is live, or
//     when the loop closes first (loop_closed: the ownership rule of
//     sock_registry.hpp); while self_ is held the endpoint is linked in its
//     loop's registry.
#include <pyco/net/datagram.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/task.hpp>

#include "sock_registry.hpp"
#include "socket_transport.hpp"

namespace pyco {

namespace {

constexpr std::size_t max_datagram = 256 * 1024;  // asyncio's max_size
constexpr int max_per_turn = 32;
constexpr std::size_t high_water = 64 * 1024;

class udp_transport final : public datagram_transport,
                            public std::enable_shared_from_this<udp_transport>,
                            private detail::loop_owned {
public:
    udp_transport(event_loop& loop, int fd, std::shared_ptr<datagram_protocol> proto, std::optional<sock_address> peer)
        : loop_(&loop), fd_(fd), proto_(std::move(proto)), peer_(std::move(peer)), rbuf_(max_datagram) {
        rop_.on_complete = &on_recv;
        rop_.user = this;
        rop_.fd = fd;
        rop_.code = detail::io_opcode::recvfrom;
        wop_.on_complete = &on_sent;
        wop_.user = this;
        wop_.fd = fd;
        wop_.code = detail::io_opcode::sendto;
    }

    void start() {
        self_ = shared_from_this();
        detail::own_by_loop(*loop_, *this);
        try {
            proto_->connection_made(*this);
        } catch (...) {
            fatal(std::current_exception(), "Fatal error: protocol.connection_made() call failed.");
            return;
        }
        receive();
    }

    std::any get_extra_info(std::string_view name) const override {
        if (name == "socket") return fd_;
        if (name == "peername") return peer_ ? std::any(*peer_) : std::any();
        if (name == "sockname" && fd_ >= 0) {
            sock_address a;
            socklen_t len = sock_address::capacity();
            if (::getsockname(fd_, a.data(), &len) == 0) {
                a.resize(len);
                return a;
            }
        }
        return {};
    }
    bool is_closing() const noexcept override { return closing_; }
    void close() override {
        if (closing_) return;
        closing_ = true;
        if (rop_live_) loop_->backend().cancel(rop_);
        if (sendq_.empty()) schedule_lost(nullptr);
    }
    void abort() override { force_close(nullptr); }
    std::size_t get_write_buffer_size() const noexcept override { return buffered_; }

    void sendto(std::span<const std::byte> data, const sock_address* addr) override {
        if (data.empty()) return;  // asyncio drops empty datagrams
        if (peer_) {
            if (addr && !(*addr == *peer_)) {
                throw value_error("Invalid address: must be None or " + peer_->to_string());
            }
            addr = nullptr;  // connected: send(2)
        }
        if (conn_lost_) {
            if (++writes_after_lost_ >= 5) detail::log_warning("socket.send() raised exception.");
            return;
        }
        if (sendq_.empty() && !wop_live_) {
            detail::io_op t;
            t.fd = fd_;
            t.code = detail::io_opcode::sendto;
            t.flags = detail::io_flag_try;
            iovec v{const_cast<std::byte*>(data.data()), data.size()};
            t.iov = &v;
            t.iovcnt = 1;
            if (addr) {
                t.addr = const_cast<sockaddr*>(addr->data());
                t.addrlen = addr->size();
            }
            loop_->backend().submit(t);
            if (t.result >= 0) return;
            if (t.result != -EAGAIN) {
                error_received(static_cast<int>(-t.result), "sendto");
                return;
            }
        }
        pending p;
        p.data.assign(data.begin(), data.end());
        if (addr) p.addr = *addr;
        buffered_ += p.data.size();
        sendq_.push_back(std::move(p));
        send_next();
        if (!paused_ && buffered_ > high_water) {
            paused_ = true;
            try {
                proto_->pause_writing();
            } catch (...) {
                loop_->call_exception_handler({"protocol.pause_writing() failed", std::current_exception(), {}, {}});
            }
        }
    }

private:
    struct pending {
        std::vector<std::byte> data;
        std::optional<sock_address> addr;
    };

    void receive() {
        for (int i = 0; i < max_per_turn && !closing_ && !conn_lost_; ++i) {
            rop_.buf = rbuf_.data();
            rop_.len = rbuf_.size();
            rop_.addr = from_.data();
            rop_.addrlen = sock_address::capacity();
            if (loop_->backend().submit(rop_) == detail::io_status::pending) {
                rop_live_ = true;
                return;
            }
            got(rop_.result, rop_.addrlen);
        }
        // A flood: go on from the next iteration, after the others.
        if (!closing_ && !conn_lost_) {
            std::shared_ptr<udp_transport> me = self_;
            loop_->call_soon([me] { me->receive(); });
        }
    }

    static void on_recv(detail::io_op& op, const detail::io_result& r) {
        auto* t = static_cast<udp_transport*>(op.user);
        t->rop_live_ = false;
        if (r.res != -ECANCELED) t->got(r.res, op.addrlen);
        if (!t->closing_ && !t->conn_lost_) t->receive();
        t->maybe_finish();
    }

    void got(long res, socklen_t addrlen) {
        if (conn_lost_) return;
        if (res < 0) {
            error_received(static_cast<int>(-res), "recvfrom");
            return;
        }
        sock_address from;
        if (!peer_) {
            from = from_;
            from.resize(addrlen);
        } else {
            from = *peer_;
        }
        try {
            proto_->datagram_received({rbuf_.data(), static_cast<std::size_t>(res)}, from);
        } catch (...) {
            fatal(std::current_exception(), "Fatal error: protocol.datagram_received() call failed.");
        }
    }

    void error_received(int err, const char* what) {
        try {
            proto_->error_received(make_os_error(err, what));
        } catch (...) {
            fatal(std::current_exception(), "Fatal error: protocol.error_received() call failed.");
        }
    }

    void send_next() {
        while (!sendq_.empty() && !wop_live_ && !conn_lost_) {
            pending& p = sendq_.front();
            wiov_ = {p.data.data(), p.data.size()};
            wop_.iov = &wiov_;
            wop_.iovcnt = 1;
            wop_.addr = p.addr ? const_cast<sockaddr*>(p.addr->data()) : nullptr;
            wop_.addrlen = p.addr ? p.addr->size() : 0;
            if (loop_->backend().submit(wop_) == detail::io_status::pending) {
                wop_live_ = true;
                return;
            }
            sent(wop_.result);
        }
    }

    static void on_sent(detail::io_op& op, const detail::io_result& r) {
        auto* t = static_cast<udp_transport*>(op.user);
        t->wop_live_ = false;
        if (r.res != -ECANCELED && !t->conn_lost_) {
            t->sent(r.res);
            t->send_next();
        }
        t->maybe_finish();
    }

    void sent(long res) {
        buffered_ -= sendq_.front().data.size();
        sendq_.pop_front();
        if (res < 0) error_received(static_cast<int>(-res), "sendto");
        if (paused_ && buffered_ <= high_water / 4) {
            paused_ = false;
            try {
                proto_->resume_writing();
            } catch (...) {
                loop_->call_exception_handler({"protocol.resume_writing() failed", std::current_exception(), {}, {}});
            }
        }
        if (sendq_.empty() && closing_) schedule_lost(nullptr);
    }

    void fatal(std::exception_ptr e, const char* message) {
        if (!detail::is_quiet_error(e) || loop_->get_debug()) loop_->call_exception_handler({message, e, {}, {}});
        force_close(e);
    }

    void force_close(std::exception_ptr e) {
        if (conn_lost_) return;
        closing_ = true;
        if (rop_live_) loop_->backend().cancel(rop_);
        if (wop_live_) loop_->backend().cancel(wop_);
        schedule_lost(std::move(e));
    }

    void schedule_lost(std::exception_ptr e) {
        if (conn_lost_) return;
        conn_lost_ = true;
        closing_ = true;
        if (loop_->is_closed()) return;  // loop_closed() will free it
        std::shared_ptr<udp_transport> me = self_;
        loop_->call_soon([me, e] {
            try {
                me->proto_->connection_lost(e);
            } catch (...) {
                me->loop_->call_exception_handler({"Exception in callback", std::current_exception(), {}, {}});
            }
            me->lost_called_ = true;
            me->maybe_finish();
        });
    }

    void maybe_finish() {
        if (!lost_called_ || rop_live_ || wop_live_ || fd_ < 0) return;
        loop_->backend().close_fd(fd_);
        fd_ = -1;
        sendq_.clear();
        buffered_ = 0;
        detail::disown_by_loop(*loop_, *this);
        auto me = std::move(self_);  // may destroy *this: nothing after this line
    }

    // The loop closed (its backend is gone) before this endpoint did.
    std::shared_ptr<void> loop_closed() noexcept override {
        closing_ = conn_lost_ = lost_called_ = true;
        rop_live_ = wop_live_ = false;
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        sendq_.clear();
        buffered_ = 0;
        return std::move(self_);
    }

    event_loop* loop_;
    int fd_;
    std::shared_ptr<datagram_protocol> proto_;
    std::optional<sock_address> peer_;
    std::shared_ptr<udp_transport> self_;
    std::vector<std::byte> rbuf_;
    sock_address from_;
    detail::io_op rop_, wop_;
    iovec wiov_{};
    std::deque<pending> sendq_;
    std::size_t buffered_ = 0;
    int writes_after_lost_ = 0;
    bool rop_live_ = false, wop_live_ = false;
    bool closing_ = false, conn_lost_ = false, lost_called_ = false, paused_ = false;
};

}  // namespace

coroutine<datagram_pair> event_loop::create_datagram_endpoint(datagram_protocol_factory factory, datagram_options o) {
    std::optional<sock_address> local, remote;
    int family = o.family;
    if (o.local_path || o.remote_path) {
        family = AF_UNIX;
        if (o.local_path) local = sock_address::unix_path(*o.local_path);
        if (o.remote_path) remote = sock_address::unix_path(*o.remote_path);
    } else {
        if (!o.local_addr && !o.remote_addr && family == AF_UNSPEC) {
            throw value_error("unexpected address family");
        }
        // Resolve both, and take the first pair of addresses of one family
        // (asyncio does the same with its addr_pairs_info).
        std::vector<addrinfo_entry> li, ri;
        if (o.local_addr) li = co_await getaddrinfo(o.local_addr->first, o.local_addr->second, family, SOCK_DGRAM, o.proto, o.flags);
        if (o.remote_addr) ri = co_await getaddrinfo(o.remote_addr->first, o.remote_addr->second, family, SOCK_DGRAM, o.proto, o.flags);
        if ((o.local_addr && li.empty()) || (o.remote_addr && ri.empty())) {
            throw std::system_error(EINVAL, std::generic_category(), "getaddrinfo() returned empty list");
        }
        bool found = false;
        for (int f : {AF_INET, AF_INET6}) {
            if (family != AF_UNSPEC && family != f) continue;
            auto pick = [f](const std::vector<addrinfo_entry>& v) -> std::optional<sock_address> {
                for (const addrinfo_entry& e : v) {
                    if (e.family == f) return e.address;
                }
                return std::nullopt;
            };
            std::optional<sock_address> l = o.local_addr ? pick(li) : std::nullopt;
            std::optional<sock_address> r = o.remote_addr ? pick(ri) : std::nullopt;
            if ((o.local_addr && !l) || (o.remote_addr && !r)) continue;
            local = l;
            remote = r;
            family = f;
            found = true;
            break;
        }
        if (!found && (o.local_addr || o.remote_addr)) throw value_error("can not get address information");
    }
    socket sock(family, SOCK_DGRAM, o.proto);
    if (o.reuse_port) sock.set_reuse_port(true);
    if (o.allow_broadcast) sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1);
    if (local) sock.bind(*local);
    if (remote) co_await sock_connect(sock, *remote);
    std::shared_ptr<datagram_protocol> proto = factory();
    if (!proto) throw type_error("protocol factory returned no protocol");
    auto t = std::make_shared<udp_transport>(*this, sock.release(), proto, remote);
    t->start();
    co_return datagram_pair{std::move(t), std::move(proto)};
}

}  // namespace pyco
