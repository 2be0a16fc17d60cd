#include <pyco/async_generator.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <pyco/task.hpp>

#include "function_name.hpp"

namespace pyco {

namespace detail {

namespace {

// CPython's messages, word for word.
constexpr const char* msg_reuse_next = "cannot reuse already awaited __anext__()/asend()";
constexpr const char* msg_reuse_throw = "cannot reuse already awaited aclose()/athrow()";
constexpr const char* msg_running_next = "anext(): asynchronous generator is already running";
constexpr const char* msg_running_throw = "athrow(): asynchronous generator is already running";
constexpr const char* msg_running_close = "aclose(): asynchronous generator is already running";
constexpr const char* msg_asend_just_started = "can't send non-None value to a just-started async generator";
constexpr const char* msg_ag_ignored_exit = "async generator ignored GeneratorExit";


// The finaliser's task (asyncio's create_task(agen.aclose())). The
// reference is a parameter so that it is released, and the frame freed,
// even if the task is cancelled before its body runs.
coroutine<void> finalize_asyncgen(asyncgen_ref g) {
    co_await asyncgen_close(g.get());
}

}  // namespace

std::string asyncgen_base::describe() const {
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", static_cast<const void*>(this));
    return "<async_generator object " + short_function_name(created_.function_name()) + " at " + addr + ">";
}

void asyncgen_base::first_iter() noexcept {
    hooked_ = true;
    if (event_loop* loop = running_loop()) {
        loop_ = loop;
        loop->live_asyncgens().push_back(*this);
    }
}

void asyncgen_base::last_ref_gone() noexcept {
    // The finaliser hook's condition: started, suspended at a co_yield and
    // not closed, on the loop running here. (A running_ generator with no
    // operation left to finish it lost its consumer: it can only be freed.)
    if (frame_ == ag_frame::started && !running_ && !closed_ && linked() && running_loop() == loop_ &&
        !loop_->is_closed()) {
        unlink();  // CPython: self._asyncgens.discard(agen)
        refs_ = 1;
        try {
            // CPython: loop.call_soon_threadsafe(loop.create_task,
            // agen.aclose()) — the task is made one iteration later, so the
            // close starts the iteration after that. (We are on the loop's
            // thread, where call_soon queues in the same place.) From here
            // the callback owns the reference, then the task's parameter:
            // whichever is dropped unrun frees the frame, now unlinked.
            event_loop* loop = loop_;
            loop->call_soon([g = asyncgen_ref::adopt(this), loop]() mutable {
                create_task(*loop, finalize_asyncgen(std::move(g)));
            });
        } catch (...) {
        }
        return;
    }
    unlink();
    self_.destroy();
}

asyncgen_op::~asyncgen_op() {
    if (!g_) return;
    if (inside_) {
        // Our awaiting frame is being destroyed with the body still inside
        // (its task abandoned): nothing can resume the body any more.
        g_->continuation_ = nullptr;
    }
    g_->release();
}

bool asyncgen_op::begin() {
    const bool is_throw = kind_ == ag_op::throw_ || kind_ == ag_op::close;
    if (state_ != st::init) throw runtime_error(is_throw ? msg_reuse_throw : msg_reuse_next);
    state_ = st::done;  // spent, whatever happens next
    immediate_ = true;
    if (g_ == nullptr) {
        exc_ = nullptr;
        return true;
    }
    if (g_->running_) {
        throw runtime_error(kind_ == ag_op::close    ? msg_running_close
                            : kind_ == ag_op::throw_ ? msg_running_throw
                                                     : msg_running_next);
    }
    const bool finished = g_->frame_ == ag_frame::finished;
    const bool created = g_->frame_ == ag_frame::created;
    switch (kind_) {
        case ag_op::next:
        case ag_op::send:
            if (finished) return true;
            if (created && kind_ == ag_op::send) throw type_error(msg_asend_just_started);
            break;
        case ag_op::throw_:
            if (finished || g_->closed_) {
                exc_ = nullptr;  // nothing left to throw into: empty, as in 3.12
                return true;
            }
            if (created) {
                g_->frame_ = ag_frame::finished;  // raised at its start: exc_
                return true;
            }
            break;
        case ag_op::close:
            if (finished || g_->closed_) return true;
            g_->closed_ = true;
            if (created) {
                g_->frame_ = ag_frame::finished;
                return true;
            }
            break;
    }
    immediate_ = false;
    state_ = st::iter;
    return false;
}

std::coroutine_handle<> asyncgen_op::enter(std::coroutine_handle<> h, coro_frame* parent, void* sent) noexcept {
    asyncgen_base& g = *g_;
    inside_ = true;
    parent_ = parent;
    g.continuation_ = h;
    g.running_ = true;
    g.yielded_ = false;
    g.sent_ = sent;
    if (kind_ == ag_op::throw_) {
        g.thrown_ = std::move(exc_);
        exc_ = nullptr;
    } else if (kind_ == ag_op::close) {
        g.thrown_ = std::make_exception_ptr(generator_exit());
    }
    if (g.frame_ == ag_frame::created) {
        g.frame_ = ag_frame::started;
        if (!g.hooked_) g.first_iter();
    }
    if (parent) parent->child_ = &g;
    return g.self_;
}

void asyncgen_op::leave() noexcept {
    if (!inside_) return;
    inside_ = false;
    state_ = st::done;
    if (parent_) parent_->child_ = nullptr;
}

bool asyncgen_op::finish_value() {
    leave();
    if (immediate_) {
        if (exc_) std::rethrow_exception(std::exchange(exc_, nullptr));
        return false;
    }
    if (g_->yielded_) {
        g_->yielded_ = false;
        return true;
    }
    if (g_->exception_) std::rethrow_exception(std::exchange(g_->exception_, nullptr));
    return false;
}

void asyncgen_op::finish_close() {
    leave();
    if (immediate_) return;
    if (g_->yielded_) {
        g_->yielded_ = false;
        g_->drop_value_(g_);
        throw runtime_error(msg_ag_ignored_exit);
    }
    if (std::exception_ptr e = std::exchange(g_->exception_, nullptr)) {
        if (!exception_is<generator_exit>(e)) std::rethrow_exception(e);
    }
}

}  // namespace detail

namespace {

coroutine<void> close_one(detail::asyncgen_ref g) {
    co_await detail::asyncgen_close(g.get());
}

bool is_cancelled_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace

coroutine<void> shutdown_asyncgens(event_loop& loop) {
    // CPython: closing_agens = list(self._asyncgens); self._asyncgens.clear()
    std::vector<detail::asyncgen_ref> gens;
    detail::list_link& live = loop.live_asyncgens();
    while (live.linked()) {
        detail::asyncgen_base* g = detail::asyncgen_base::from_link(live.next);
        g->unlink();
        gens.emplace_back(g);
    }
    if (gens.empty()) co_return;
    // gather(*[ag.aclose() for ag in closing_agens], return_exceptions=True)
    std::vector<task<void>> closers;
    closers.reserve(gens.size());
    for (const detail::asyncgen_ref& g : gens) closers.push_back(create_task(loop, close_one(g)));
    for (std::size_t i = 0; i < closers.size(); ++i) {
        std::exception_ptr e;
        try {
            co_await closers[i];
        } catch (...) {
            e = std::current_exception();
        }
        if (!e || !is_cancelled_error(e)) {
            if (e) {
                loop.call_exception_handler(
                    {"an error occurred during closing of asynchronous generator " + gens[i]->describe(), e, {}, {}});
            }
            continue;
        }
        // A cancelled aclose is not an error (CancelledError is no
        // Exception); our own cancellation cancels the rest, as gather's.
        if (any_task self = current_task(); self && self.cancelling() > 0) {
            for (std::size_t j = i + 1; j < closers.size(); ++j) closers[j].cancel();
            std::rethrow_exception(e);
        }
    }
}

coroutine<void> event_loop::shutdown_asyncgens() { return pyco::shutdown_asyncgens(*this); }

}  // namespace pyco
