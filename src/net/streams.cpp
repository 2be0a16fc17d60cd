// stream_writer and stream_reader_protocol (asyncio's streams.py, with its
// FlowControlMixin).
//
// Invariants of the protocol's state:
//   - paused is true between pause_writing and resume_writing; drain waiters
//     exist only while paused, and all of them are woken together;
//   - once lost, no drain waits: drain_helper raises connection_reset_error;
//   - the closed future completes exactly once, at connection_lost (with the
//     error, if any; a closed future's error is marked retrieved, as asyncio
//     does, so that nobody waiting is not an error).
#include <pyco/net/streams.hpp>

#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/shield.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include <cerrno>

namespace pyco {

struct stream_reader_protocol::state {
    event_loop* loop = nullptr;
    pyco::transport* transport = nullptr;
    std::shared_ptr<pyco::transport> transport_ref;  // while a callback task runs
    std::vector<future<void>> drain_waiters;
    std::optional<future<void>> closed;
    std::optional<task<void>> cb_task;
    bool paused = false;
    bool lost = false;
    bool over_ssl = false;  // asyncio's _over_ssl: no half-close over TLS
};

stream_reader_protocol::stream_reader_protocol(std::shared_ptr<stream_reader> reader, client_connected_cb cb)
    : reader_(std::move(reader)), cb_(std::move(cb)), st_(std::make_unique<state>()) {
    st_->loop = &get_running_loop();
    st_->closed = create_future<void>(*st_->loop);
}

stream_reader_protocol::~stream_reader_protocol() {
    if (reader_) reader_->set_transport(nullptr);
    // A closed future nobody awaited holds no unretrieved error.
    if (st_->closed && st_->closed->done() && !st_->closed->cancelled()) (void)st_->closed->exception();
}

void stream_reader_protocol::connection_made(pyco::transport& t) {
    st_->transport = &t;
    st_->over_ssl = t.get_extra_info("sslcontext").has_value();
    reader_->set_transport(this);
    if (!cb_) return;
    auto self = std::static_pointer_cast<stream_reader_protocol>(
        std::shared_ptr<protocol>(t.get_protocol()));
    stream_writer writer(t.shared_from_this(), self, reader_);
    task<void> tk = create_task(cb_(reader_, writer));
    // asyncio: an exception escaping the callback is reported, and the
    // connection closed.
    std::weak_ptr<pyco::transport> weak = t.shared_from_this();
    event_loop* loop = st_->loop;
    tk.add_done_callback([weak, loop](task<void>& f) {
        if (f.cancelled()) return;
        std::exception_ptr e = f.exception();
        if (!e) return;
        loop->call_exception_handler({"Unhandled exception in client_connected_cb", e, {}, {}});
        if (auto tr = weak.lock()) tr->close();
    });
    st_->cb_task = std::move(tk);
}

void stream_reader_protocol::data_received(std::span<const std::byte> data) { reader_->feed_data(data); }

bool stream_reader_protocol::eof_received() {
    reader_->feed_eof();
    // Keep the transport open: the writer may still write (half-close);
    // not over TLS, which has no half-close (asyncio returns False then).
    return !st_->over_ssl;
}

void stream_reader_protocol::connection_lost(std::exception_ptr exc) {
    if (exc) {
        reader_->set_exception(exc);
    } else {
        reader_->feed_eof();
    }
    reader_->set_transport(nullptr);
    if (st_->closed && !st_->closed->done()) {
        if (exc) {
            st_->closed->set_exception(exc);
        } else {
            st_->closed->set_result();
        }
    }
    st_->lost = true;
    // FlowControlMixin.connection_lost: every drain waiter wakes.
    std::vector<future<void>> ws = std::move(st_->drain_waiters);
    st_->drain_waiters.clear();
    st_->paused = false;
    for (future<void>& w : ws) {
        if (w.done()) continue;
        if (exc) {
            w.set_exception(exc);
        } else {
            w.set_result();
        }
    }
    st_->transport = nullptr;
    st_->cb_task.reset();
}

void stream_reader_protocol::replace_transport(pyco::transport& t) noexcept {
    st_->transport = &t;
    st_->over_ssl = true;
}

void stream_reader_protocol::pause_writing() { st_->paused = true; }

void stream_reader_protocol::resume_writing() {
    st_->paused = false;
    std::vector<future<void>> ws = std::move(st_->drain_waiters);
    st_->drain_waiters.clear();
    for (future<void>& w : ws) {
        if (!w.done()) w.set_result();
    }
}

void stream_reader_protocol::pause_reading() {
    if (st_->transport) st_->transport->pause_reading();
}

void stream_reader_protocol::resume_reading() {
    if (st_->transport) st_->transport->resume_reading();
}

coroutine<void> stream_reader_protocol::drain_helper() {
    if (st_->lost) throw connection_reset_error(ECONNRESET, "Connection lost");
    if (!st_->paused) co_return;
    future<void> w = create_future<void>(*st_->loop);
    st_->drain_waiters.push_back(w);
    co_await w;
}

coroutine<void> stream_reader_protocol::closed() {
    // Shielded: the closed future is shared by every wait_closed(), and a
    // cancelled waiter must not cancel it for the others or a retry
    // (CPython's does; its StreamWriter.wait_closed then raises
    // CancelledError for ever after).
    future<void> f = *st_->closed;
    co_await shield(f);
}

stream_writer::stream_writer(std::shared_ptr<pyco::transport> t, std::shared_ptr<stream_reader_protocol> p,
                             std::shared_ptr<stream_reader> r)
    : st_(std::make_shared<shared>(std::move(t), std::move(p), std::move(r))) {}

stream_writer::shared::~shared() {
    if (!transport) return;
    try {
        if (!transport->is_closing()) transport->close();
    } catch (...) {
        // Its loop is closed: nothing can be closed through it any more.
    }
}

coroutine<void> stream_writer::drain() {
    // Hold the writer: the caller's copy may go meanwhile (as the coroutine
    // holds self in CPython).
    std::shared_ptr<shared> st = st_;
    if (st->reader) {
        if (std::exception_ptr e = st->reader->exception()) std::rethrow_exception(e);
    }
    if (st->transport->is_closing()) {
        // Let connection_lost run first, so that drain raises rather than
        // returning on a connection already gone (asyncio's sleep(0)).
        co_await sleep(std::chrono::seconds(0));
    }
    co_await st->protocol->drain_helper();
}

coroutine<void> stream_writer::wait_closed() {
    // Only the protocol: a wait_closed() must not keep the last copy of the
    // writer from closing the transport, or it would wait for ever.
    std::shared_ptr<stream_reader_protocol> p = st_->protocol;
    co_await p->closed();
}

coroutine<void> stream_writer::start_tls(ssl_context ctx, start_tls_options options) {
    std::shared_ptr<shared> st = st_;
    options.server_side = st->protocol->server_side();
    co_await drain();
    std::shared_ptr<pyco::transport> nt =
        co_await get_running_loop().start_tls(st->transport, st->protocol, std::move(ctx), options);
    st->transport = nt;
    st->protocol->replace_transport(*nt);
}

}  // namespace pyco
