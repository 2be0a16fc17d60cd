#include <pyco/detail/future_base.hpp>

#include <utility>

#include <pyco/unraisable.hpp>

namespace pyco::detail {

future_base::~future_base() {
    // Callbacks that never ran: free what they hold.
    drop_callbacks();
}

void future_base::drop_callbacks() noexcept {
    const done_callback first = std::exchange(first_cb_, {});
    std::unique_ptr<std::vector<done_callback>> more = std::move(more_cbs_);
    if (first.fn) first.fn(first.ctx, nullptr, false);
    if (more) {
        for (const done_callback& cb : *more) cb.fn(cb.ctx, nullptr, false);
    }
}

void future_base::destroy() noexcept {
    if (log_traceback_) {
        try {
            exception_context ctx{std::string(kind()) + " exception was never retrieved", exception_,
                                  describe(), {}};
            // The loop may be gone by now; use it only while it runs here.
            event_loop* loop = loop_.get();
            if (loop != nullptr && running_loop() == loop) {
                loop->call_exception_handler(ctx);
            } else {
                print_exception_context(ctx);
            }
        } catch (...) {
        }
    }
    delete this;
}

const char* future_base::state_name() const noexcept {
    switch (state_) {
        case fut_state::pending: return "PENDING";
        case fut_state::cancelled: return "CANCELLED";
        case fut_state::finished: return "FINISHED";
    }
    return "?";
}

std::string future_base::describe() const {
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false
    // positive) on "literal" + std::string&&, which inserts at the front.
    std::string s = "<";
    s += kind();
    s += ' ';
    switch (state_) {
        case fut_state::pending: s += "pending"; break;
        case fut_state::cancelled: s += "cancelled"; break;
        case fut_state::finished:
            s += "finished";
            if (exception_) {
                s += " exception=";
                s += describe_exception(exception_);
            }
            break;
    }
    return s + ">";
}

void future_base::check_pending() const {
    // CPython's C Future (the one asyncio uses); the pure-Python one says
    // f'{self._state}: {self!r}'.
    if (done()) throw invalid_state_error("invalid state");
}

void future_base::raise_cancelled() const {
    if (exception_) std::rethrow_exception(exception_);
    throw cancelled_error();
}

std::exception_ptr future_base::make_cancel(std::string msg) {
    if (msg.empty()) return nullptr;
    return std::make_exception_ptr(cancelled_error(std::move(msg)));
}

bool future_base::cancel(std::string msg) {
    log_traceback_ = false;
    if (done()) return false;
    state_ = fut_state::cancelled;
    exception_ = make_cancel(std::move(msg));
    finish();
    return true;
}

void future_base::set_exception(std::exception_ptr e) {
    if (!e) throw type_error("set_exception() needs an exception");
    check_pending();
    exception_ = std::move(e);
    state_ = fut_state::finished;
    log_traceback_ = true;
    finish();
}

std::exception_ptr future_base::exception() {
    if (state_ == fut_state::cancelled) raise_cancelled();
    if (state_ == fut_state::pending) throw invalid_state_error("Exception is not set.");
    log_traceback_ = false;
    return exception_;  // finished: the exception or null
}

void future_base::raise_if_failed() {
    if (state_ == fut_state::cancelled) raise_cancelled();
    if (state_ == fut_state::pending) throw invalid_state_error("Result is not set.");
    log_traceback_ = false;
    if (exception_) std::rethrow_exception(exception_);
}

void future_base::finish() {
    if (state_ == fut_state::pending) state_ = fut_state::finished;
    if (loop_.closed() && (first_cb_.fn || more_cbs_)) [[unlikely]] {
        // CPython: call_soon raises, and every callback is dropped. Queued
        // into a closed loop they would never run nor be freed.
        drop_callbacks();
        throw runtime_error("Event loop is closed");
    }
    // Each queued callback owns a reference to this future.
    if (first_cb_.fn) {
        add_ref();
        loop_->schedule({first_cb_.fn, first_cb_.ctx, this});
        first_cb_ = {};
    }
    if (more_cbs_) {
        for (const done_callback& cb : *more_cbs_) {
            add_ref();
            loop_->schedule({cb.fn, cb.ctx, this});
        }
        more_cbs_.reset();
    }
}

std::uint32_t future_base::add_callback(void (*fn)(void*, void*, bool), void* ctx) {
    // ctx stays the caller's if this throws.
    if (done() && loop_.closed()) throw runtime_error("Event loop is closed");
    const std::uint32_t id = ++next_cb_id_;
    if (done()) {
        add_ref();
        loop_->schedule({fn, ctx, this});
        return id;
    }
    if (!first_cb_.fn && !more_cbs_) {
        first_cb_ = {fn, ctx, id};
    } else {
        if (!more_cbs_) more_cbs_ = std::make_unique<std::vector<done_callback>>();
        more_cbs_->push_back({fn, ctx, id});
    }
    return id;
}

std::size_t future_base::remove_callback(std::uint32_t id) {
    if (first_cb_.fn && first_cb_.id == id) {
        first_cb_.fn(first_cb_.ctx, nullptr, false);
        first_cb_ = {};
        if (more_cbs_ && !more_cbs_->empty()) {  // keep FIFO order: the next moves up
            first_cb_ = more_cbs_->front();
            more_cbs_->erase(more_cbs_->begin());
        }
        return 1;
    }
    if (!more_cbs_) return 0;
    for (auto it = more_cbs_->begin(); it != more_cbs_->end(); ++it) {
        if (it->id == id) {
            it->fn(it->ctx, nullptr, false);
            more_cbs_->erase(it);
            return 1;
        }
    }
    return 0;
}

}  // namespace pyco::detail
