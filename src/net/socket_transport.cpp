// The stream transport (asyncio's _SelectorSocketTransport, written over the
// operation seam instead of readiness callbacks).
//
// Invariants:
//   - rop_ (a multishot receive) is live from the start of reading until
//     EOF, an error, or its cancel lands; wop_ (one send of the buffered
//     bytes) is live while a send is in flight. The backend owns a live op
//     and every byte it names, so the write buffer is a list of chunks whose
//     bytes never move: appending fills the last chunk's spare room or adds
//     a chunk, and a chunk is freed only once sent.
//   - The fd is closed, and the self-reference dropped, only once
//     connection_lost has run and neither op is live (maybe_finish) — or
//     when the loop closes first (loop_closed: the ownership rule of
//     sock_registry.hpp). While self_ is held the transport is linked in
//     its loop's registry.
//   - conn_lost_ is set once: connection_lost is scheduled exactly once.
//   - buffered_ is what get_write_buffer_size() reports: the bytes not yet
//     sent, or 0 once force_close dropped them (CPython's _force_close), even
//     while wbuf_ must still hold them for a send in flight.
//   - A write tries the caller's bytes in place first (io_flag_try) when
//     nothing is buffered; only what the kernel did not take is copied.
//   - An idle transport holds at most kept_chunk bytes of write buffer: once
//     everything is sent, the last chunk is kept for the next write only if
//     it is that small. On io_uring every write is buffered, so the chunk
//     kept would otherwise be 64 KiB — or the size of the largest write —
//     for each connection for its whole life (tests/soak found 10,000
//     connections holding 640 MiB). Larger chunks, once sent, go back to a
//     small per-thread pool (buffer_pool.hpp, at most 4 MiB) that the next large
//     write takes from: freeing and re-allocating a 64 KiB+ chunk per write
//     made glibc trim and regrow its heap each time (io_uring bulk echo at
//     100 KiB fell from ~2 GiB/s to under 1).
#include "socket_transport.hpp"
#include "buffer_pool.hpp"
#include "sock_registry.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <deque>

#include <pyco/detail/io_backend.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>

namespace pyco::detail {

namespace {

constexpr std::size_t default_high_water = 64 * 1024;  // asyncio's
constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t kept_chunk = 16 * 1024;  // see the invariants
constexpr std::size_t max_iov = 64;
constexpr std::size_t read_size = 256 * 1024;  // uvloop's; asyncio reads 256 KiB too

// The receive buffer for plain protocols: data_received consumes it before
// the next read, so one per thread serves every transport of the loop.
std::span<std::byte> scratch() {
    thread_local std::unique_ptr<std::byte[]> buf(new std::byte[read_size]);
    return {buf.get(), read_size};
}

}  // namespace

// asyncio's _fatal_error (3.12): an OSError — here any std::system_error,
// the connection errors among them — is only logged in debug mode; other
// errors (a protocol callback's) go to the exception handler.
bool is_quiet_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

namespace {

class stream_transport final : public transport, private loop_owned {
public:
    stream_transport(event_loop& loop, int fd, std::shared_ptr<protocol> proto, stream_transport_options o)
        : loop_(&loop), fd_(fd), pipe_(o.is_pipe || o.pipe_write_only), write_only_(o.pipe_write_only),
          on_lost_(std::move(o.on_lost)) {
        set_protocol(std::move(proto));
        rop_.on_complete = &on_read;
        rop_.user = this;
        rop_.fd = fd;
        rop_.code = io_opcode::recv_stream;
        rop_.flags = io_flag_stream | (pipe_ ? io_flag_pipe : 0);
        rop_.get_buffer = &read_room;
        if (write_only_) {
            // The readiness is watched on a duplicate: a backend does not mix
            // add_reader-style polls with a transport's operations on one fd.
            hup_fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
            rop_.fd = hup_fd_;
            rop_.code = io_opcode::poll_read;
            rop_.flags = 0;
            rop_.get_buffer = nullptr;
            rop_.on_complete = &on_reader_gone;
        }
        wop_.on_complete = &on_written;
        wop_.user = this;
        wop_.fd = fd;
        wop_.code = io_opcode::send;
        wop_.flags = pipe_ ? io_flag_pipe : 0;
    }

    void start(bool defer) {
        self_ = std::static_pointer_cast<stream_transport>(shared_from_this());
        own_by_loop(*loop_, *this);
        if (!defer) {
            made();
            return;
        }
        std::shared_ptr<stream_transport> me = self_;
        loop_->call_soon([me] { me->made(); });
    }

    // --- base_transport ---
    // peername and sockname are asked of the kernel at the first request
    // and kept (asyncio asks at creation; most connections never ask).
    std::any get_extra_info(std::string_view name) const override {
        if (name == "socket" || name == "pipe") return fd_;
        if (pipe_) return {};
        const bool peer = name == "peername";
        if (!peer && name != "sockname") return {};
        std::optional<sock_address>& cached = peer ? peername_ : sockname_;
        if (!cached && fd_ >= 0) {
            sock_address a;
            socklen_t len = sock_address::capacity();
            if ((peer ? ::getpeername(fd_, a.data(), &len) : ::getsockname(fd_, a.data(), &len)) == 0) {
                a.resize(len);
                cached = a;
            }
        }
        return cached ? std::any(*cached) : std::any();
    }
    bool is_closing() const noexcept override { return closing_; }
    void close() override {
        if (closing_) return;
        closing_ = true;
        stop_reading();
        if (buffered_ == 0 && !wop_live_) schedule_lost(nullptr);
    }

    // --- read side ---
    bool is_reading() const noexcept override { return !paused_ && !closing_; }
    void pause_reading() override {
        if (!is_reading()) return;
        paused_ = true;
        stop_reading();
    }
    void resume_reading() override {
        if (closing_ || !paused_) return;
        paused_ = false;
        // Bytes a backend delivered after the pause go first, in order.
        if (!held_.empty()) {
            std::vector<std::byte> held = std::move(held_);
            held_.clear();
            deliver(held.data(), held.size());
            if (paused_ || closing_) return;
        }
        start_reading();
    }

    // --- write side ---
    void write(std::span<const std::byte> data) override {
        if (eof_requested_) throw runtime_error("Cannot call write() after write_eof()");
        if (data.empty()) return;
        if (conn_lost_) {
            // asyncio counts these and warns at each from the fifth on
            // (LOG_THRESHOLD_FOR_CONNLOST_WRITES); the bytes are dropped.
            if (++writes_after_lost_ >= 5) detail::log_warning("socket.send() raised exception.");
            return;
        }
        if (buffered_ == 0 && !wop_live_) {
            // Try the caller's bytes in place: most writes end here.
            io_op t;
            t.fd = fd_;
            t.code = io_opcode::send;
            t.flags = static_cast<std::uint8_t>(io_flag_try | (pipe_ ? io_flag_pipe : 0));
            iovec v{const_cast<std::byte*>(data.data()), data.size()};
            t.iov = &v;
            t.iovcnt = 1;
            loop_->backend().submit(t);
            if (t.result < 0 && t.result != -EAGAIN) {
                fatal_error(make_os_error(static_cast<int>(-t.result), "write"),
                            "Fatal write error on socket transport");
                return;
            }
            const std::size_t n = t.result > 0 ? static_cast<std::size_t>(t.result) : 0;
            if (n == data.size()) return;
            data = data.subspan(n);
        }
        append(data);
        start_send();
        maybe_pause_protocol();
    }
    void writelines(std::span<const std::string_view> lines) override {
        if (eof_requested_) throw runtime_error("Cannot call writelines() after write_eof()");
        if (conn_lost_) {
            if (++writes_after_lost_ >= 5) detail::log_warning("socket.send() raised exception.");
            return;
        }
        // Buffered as one, then sent as one (and so paused at the high-water
        // mark like write(): cpython gh-127655).
        for (std::string_view l : lines) append(std::as_bytes(std::span<const char>(l.data(), l.size())));
        start_send();
        maybe_pause_protocol();
    }
    void write_eof() override {
        if (write_only_) {
            close();
            return;
        }
        if (closing_ || eof_requested_) return;
        eof_requested_ = true;
        if (buffered_ == 0 && !wop_live_) shutdown_write();
    }
    bool can_write_eof() const noexcept override { return true; }
    void abort() override { force_close(nullptr); }
    std::size_t get_write_buffer_size() const noexcept override { return buffered_; }
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override { return {low_, high_}; }
    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
        std::size_t h, l;
        if (!high) {
            h = low ? 4 * *low : default_high_water;
        } else {
            h = *high;
        }
        l = low ? *low : h / 4;
        if (l > h) {
            throw value_error("high (" + std::to_string(h) + ") must be >= low (" + std::to_string(l) +
                              ") must be >= 0");
        }
        high_ = h;
        low_ = l;
        maybe_pause_protocol();
    }
    void set_protocol(std::shared_ptr<protocol> p) override {
        proto_ = std::move(p);
        buffered_proto_ = dynamic_cast<buffered_protocol*>(proto_.get());
    }
    std::shared_ptr<protocol> get_protocol() const override { return proto_; }

private:
    struct chunk {
        std::unique_ptr<std::byte[]> data;
        std::size_t cap = 0, begin = 0, end = 0;
    };

    void made() {
        if (conn_lost_) return;
        try {
            proto_->connection_made(*this);
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.connection_made() call failed.");
            return;
        }
        if (is_reading()) start_reading();
    }

    void start_reading() {
        if (rop_live_ || read_eof_ || conn_lost_) return;
        if (write_only_ && hup_fd_ < 0) return;  // no duplicate to be had (EMFILE): not watched
        rop_live_ = true;
        loop_->backend().submit(rop_);  // multishot: never completes inline
    }
    void stop_reading() {
        if (rop_live_) loop_->backend().cancel(rop_);
    }

    static std::span<std::byte> read_room(io_op& op) {
        auto* t = static_cast<stream_transport*>(op.user);
        if (t->buffered_proto_) {
            try {
                std::span<std::byte> room = t->buffered_proto_->get_buffer(read_size);
                if (!room.empty()) {
                    t->last_room_ = room;
                    return room;
                }
                t->pending_error_ = std::make_exception_ptr(runtime_error("get_buffer() returned an empty buffer"));
            } catch (...) {
                t->pending_error_ = std::current_exception();
            }
            // Read into the scratch; the error is raised when the bytes arrive.
        }
        return scratch();
    }

    static void on_read(io_op& op, const io_result& r) {
        auto* t = static_cast<stream_transport*>(op.user);
        if (!r.more) t->rop_live_ = false;
        if (r.res > 0) {
            t->received(r.data, static_cast<std::size_t>(r.res));
        } else if (r.res == 0) {
            t->read_eof_ = true;
            t->eof();
        } else if (r.res == -ECANCELED) {
            // Paused or closing; a resume that came while the cancel was in
            // flight restarts reading now.
            if (t->is_reading() && !t->conn_lost_) t->start_reading();
        } else {
            t->fatal_error(make_os_error(static_cast<int>(-r.res), "read"), "Fatal read error on socket transport");
        }
        if (!r.more) t->maybe_finish();
    }

    // The write end of a pipe was readable: its read end has closed.
    static void on_reader_gone(io_op& op, const io_result& r) {
        auto* t = static_cast<stream_transport*>(op.user);
        if (!r.more) t->rop_live_ = false;
        if (r.res != -ECANCELED && !t->conn_lost_) {
            if (t->buffered_ > 0) {
                t->force_close(make_os_error(EPIPE, "write"));
            } else {
                t->force_close(nullptr);
            }
        }
        if (!r.more) t->maybe_finish();
    }

    void received(const std::byte* data, std::size_t n) {
        if (conn_lost_ || closing_) return;  // asyncio stops reading at close()
        if (paused_) {
            held_.insert(held_.end(), data, data + n);
            return;
        }
        deliver(data, n);
    }

    void deliver(const std::byte* data, std::size_t n) {
        if (pending_error_) {
            std::exception_ptr e = std::exchange(pending_error_, nullptr);
            fatal_error(e, "Fatal error: protocol.get_buffer() call failed.");
            return;
        }
        try {
            if (!buffered_proto_) {
                proto_->data_received({data, n});
                return;
            }
            // The bytes may already be in the protocol's buffer (epoll read
            // into it); else copy them in, as much as each get_buffer gives.
            while (n > 0) {
                std::span<std::byte> room = last_room_;
                if (room.data() != data) {
                    try {
                        room = buffered_proto_->get_buffer(n);
                        if (room.empty()) throw runtime_error("get_buffer() returned an empty buffer");
                    } catch (...) {
                        // Named as when the backend asked (read_room): the
                        // same fault, whichever backend finds it.
                        fatal_error(std::current_exception(), "Fatal error: protocol.get_buffer() call failed.");
                        return;
                    }
                    std::size_t k = std::min(room.size(), n);
                    std::memcpy(room.data(), data, k);
                    buffered_proto_->buffer_updated(k);
                    data += k;
                    n -= k;
                } else {
                    buffered_proto_->buffer_updated(n);
                    n = 0;
                }
                last_room_ = {};
            }
        } catch (...) {
            fatal_error(std::current_exception(), buffered_proto_ ? "Fatal error: protocol.buffer_updated() call failed."
                                                                  : "Fatal error: protocol.data_received() call failed.");
        }
    }

    void eof() {
        if (conn_lost_ || closing_) return;
        bool keep_open = false;
        try {
            keep_open = proto_->eof_received();
        } catch (...) {
            fatal_error(std::current_exception(), "Fatal error: protocol.eof_received() call failed.");
            return;
        }
        if (!keep_open) close();
    }

    void append(std::span<const std::byte> data) {
        if (data.empty()) return;
        buffered_ += data.size();
        if (!wbuf_.empty()) {
            chunk& last = wbuf_.back();
            const std::size_t room = last.cap - last.end;
            const std::size_t k = std::min(room, data.size());
            std::memcpy(last.data.get() + last.end, data.data(), k);
            last.end += k;
            data = data.subspan(k);
            if (data.empty()) return;
        }
        chunk c;
        // A small write to an empty buffer gets a chunk its size (at least
        // 1 KiB), small enough to keep: an idle connection keeps what its
        // usual message needs, not 16 KiB.
        if (wbuf_.empty() && data.size() <= kept_chunk) {
            c.cap = std::max<std::size_t>(data.size(), 1024);
            c.data.reset(new std::byte[c.cap]);
        } else {
            c.data = buffer_pool<std::byte>::here().take(std::max(chunk_size, data.size()), c.cap);
        }
        std::memcpy(c.data.get(), data.data(), data.size());
        c.end = data.size();
        wbuf_.push_back(std::move(c));
    }

    void consume(std::size_t n) {
        buffered_ -= n;
        while (n > 0) {
            chunk& c = wbuf_.front();
            const std::size_t k = std::min(n, c.end - c.begin);
            c.begin += k;
            n -= k;
            if (c.begin == c.end) {
                if (wbuf_.size() == 1 && c.cap <= kept_chunk) {
                    c.begin = c.end = 0;  // kept: the next small write reuses it
                } else {
                    if (c.cap > kept_chunk) buffer_pool<std::byte>::here().give(std::move(c.data), c.cap);
                    wbuf_.pop_front();
                }
            }
        }
    }

    void start_send() {
        while (buffered_ > 0 && !wop_live_ && !conn_lost_) {
            iov_.clear();
            for (const chunk& c : wbuf_) {
                if (c.end > c.begin) iov_.push_back({c.data.get() + c.begin, c.end - c.begin});
                if (iov_.size() == max_iov) break;
            }
            wop_.iov = iov_.data();
            wop_.iovcnt = static_cast<int>(iov_.size());
            if (loop_->backend().submit(wop_) == io_status::pending) {
                wop_live_ = true;
                return;
            }
            if (!sent(wop_.result)) return;
        }
    }

    static void on_written(io_op& op, const io_result& r) {
        auto* t = static_cast<stream_transport*>(op.user);
        t->wop_live_ = false;
        if (t->conn_lost_) {
            t->maybe_finish();
            return;
        }
        if (t->sent(r.res)) t->start_send();
        t->maybe_finish();
    }

    // False when the transport failed.
    bool sent(long res) {
        if (res < 0) {
            if (res != -ECANCELED) {
                fatal_error(make_os_error(static_cast<int>(-res), "write"), "Fatal write error on socket transport");
            }
            return false;
        }
        consume(static_cast<std::size_t>(res));
        maybe_resume_protocol();
        if (buffered_ == 0) {
            if (closing_) {
                schedule_lost(nullptr);
            } else if (eof_requested_) {
                shutdown_write();
            }
        }
        return true;
    }

    void shutdown_write() {
        if (eof_sent_) return;
        eof_sent_ = true;
        if (!pipe_) {
            ::shutdown(fd_, SHUT_WR);
        }
    }

    void maybe_pause_protocol() {
        if (protocol_paused_ || buffered_ <= high_ || conn_lost_) return;
        protocol_paused_ = true;
        try {
            proto_->pause_writing();
        } catch (...) {
            loop_->call_exception_handler({"protocol.pause_writing() failed", std::current_exception(), {}, {}});
        }
    }
    void maybe_resume_protocol() {
        if (!protocol_paused_ || buffered_ > low_) return;
        protocol_paused_ = false;
        try {
            proto_->resume_writing();
        } catch (...) {
            loop_->call_exception_handler({"protocol.resume_writing() failed", std::current_exception(), {}, {}});
        }
    }

    void fatal_error(std::exception_ptr exc, const char* message) {
        if (!is_quiet_error(exc) || loop_->get_debug()) {
            loop_->call_exception_handler({message, exc, {}, {}});
        }
        force_close(exc);
    }

    void force_close(std::exception_ptr exc) {
        if (conn_lost_) return;
        closing_ = true;
        stop_reading();
        if (wop_live_) loop_->backend().cancel(wop_);
        // The bytes are dropped now, as CPython's _force_close clears its
        // buffer: get_write_buffer_size() says 0 from here on, connection_lost
        // included. Their memory (wbuf_) stays until maybe_finish: a send in
        // flight may still read it.
        buffered_ = 0;
        schedule_lost(std::move(exc));
    }

    void schedule_lost(std::exception_ptr exc) {
        if (conn_lost_) return;
        conn_lost_ = true;
        closing_ = true;
        // Closed by a destructor while the loop closes (a stream_writer's
        // last copy): nothing can run any more; loop_closed() will free it.
        if (loop_->is_closed()) return;
        std::shared_ptr<stream_transport> me = self_;
        loop_->call_soon([me, exc] { me->call_connection_lost(exc); });
    }

    void call_connection_lost(std::exception_ptr exc) {
        try {
            proto_->connection_lost(exc);
        } catch (...) {
            loop_->call_exception_handler({"Exception in callback", std::current_exception(), {}, {}});
        }
        lost_called_ = true;
        if (on_lost_) {
            auto f = std::move(on_lost_);
            f();
        }
        maybe_finish();
    }

    void maybe_finish() {
        if (!lost_called_ || rop_live_ || wop_live_ || fd_ < 0) return;
        loop_->backend().close_fd(fd_);
        fd_ = -1;
        if (hup_fd_ >= 0) loop_->backend().close_fd(hup_fd_);
        hup_fd_ = -1;
        wbuf_.clear();
        buffered_ = 0;
        held_.clear();
        disown_by_loop(*loop_, *this);
        auto me = std::move(self_);  // may destroy *this: nothing after this line
    }

    // The loop closed (its backend is gone) before this transport did.
    std::shared_ptr<void> loop_closed() noexcept override {
        closing_ = conn_lost_ = lost_called_ = true;
        rop_live_ = wop_live_ = false;
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        if (hup_fd_ >= 0) ::close(hup_fd_);
        hup_fd_ = -1;
        wbuf_.clear();
        buffered_ = 0;
        held_.clear();
        on_lost_ = nullptr;
        return std::move(self_);
    }

    event_loop* loop_;
    int fd_;
    bool pipe_;
    bool write_only_;
    int hup_fd_ = -1;  // write_only_: a duplicate of fd_ watched for the read end's close
    std::function<void()> on_lost_;
    std::shared_ptr<protocol> proto_;
    buffered_protocol* buffered_proto_ = nullptr;
    std::shared_ptr<stream_transport> self_;
    io_op rop_, wop_;
    std::deque<chunk> wbuf_;
    std::vector<iovec> iov_;
    std::vector<std::byte> held_;
    std::span<std::byte> last_room_;
    mutable std::optional<sock_address> peername_, sockname_;
    std::exception_ptr pending_error_;
    std::size_t buffered_ = 0;
    std::size_t high_ = default_high_water, low_ = default_high_water / 4;
    int writes_after_lost_ = 0;
    bool rop_live_ = false, wop_live_ = false;
    bool paused_ = false, closing_ = false, conn_lost_ = false, lost_called_ = false;
    bool read_eof_ = false, eof_requested_ = false, eof_sent_ = false;
    bool protocol_paused_ = false;
};

}  // namespace

std::shared_ptr<transport> make_stream_transport(event_loop& loop, int fd, std::shared_ptr<protocol> proto,
                                                 stream_transport_options options) {
    auto t = std::make_shared<stream_transport>(loop, fd, std::move(proto), options);
    t->start(options.defer_connection_made);
    return t;
}

}  // namespace pyco::detail
