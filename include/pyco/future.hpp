// pyco/future.hpp — asyncio.Future: pyco::future<T>.
//
// A future is a handle to a shared state (copies share it). It belongs to
// one loop and is used on that loop's thread only. States, callbacks and the
// never-retrieved report are in detail/future_base.hpp.
//
// `co_await fut` inside a task parks the task until the future is done (one
// wake-up, through a done callback), then gives the result or raises its
// exception, or cancelled_error if it was cancelled. Cancelling the task
// while it waits cancels the future. Awaiting outside a task is a
// runtime_error, and so is awaiting a pending future of another loop (or of
// a destroyed one): CPython's "Task ... got Future ... attached to a
// different loop", raised at the co_await (CPython raises it one loop
// iteration later, from the task's next step).
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include <pyco/detail/future_base.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/event_loop.hpp>

namespace pyco {

namespace detail {

// The awaiter for futures and tasks.
template <class State>
class future_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit future_awaiter(State* s) noexcept : s_(s) {}
    bool await_ready() const noexcept { return s_->done(); }
    void await_suspend(std::coroutine_handle<> h) {
        task_ = task_base::current();
        if (task_ == nullptr) throw runtime_error("a future can only be awaited inside a task");
        if (static_cast<future_base*>(s_) == task_) {
            throw runtime_error("Task cannot await on itself: " + task_->describe());
        }
        if (s_->loop_if_alive() != &task_->get_loop()) [[unlikely]] {
            // Its callback would wake the task from the other loop.
            throw runtime_error("Task " + task_->describe() + " got Future " + s_->describe() +
                                " attached to a different loop");
        }
        task_->wait_on(*s_, h);
    }
    decltype(auto) await_resume() {
        if (task_) {
            try {
                task_->raise_throw_in();
            } catch (...) {
                // CPython's Task.__wakeup reads the future's result before
                // the cancellation is thrown in: its exception is seen.
                s_->mark_retrieved();
                throw;
            }
        }
        if constexpr (!requires { s_->result(); }) {
            s_->raise_if_failed();  // an untyped task: wait, and raise
        } else {
            return await_result();
        }
    }

private:
    decltype(auto) await_result() {
        using R = decltype(s_->result());
        if constexpr (std::is_void_v<R>) {
            s_->result();
        } else {
            using T = std::remove_reference_t<R>;
            // Copied when it can be (the future keeps its result, as in
            // Python); a move-only result is moved out.
            if constexpr (std::is_copy_constructible_v<T>) {
                return T(s_->result());
            } else {
                return T(std::move(s_->result()));
            }
        }
    }

    State* s_;
    task_base* task_ = nullptr;
};

// Adapts a std::function done callback to the raw callback protocol.
template <class Handle, class State>
void run_user_callback(void* ctx, void* fut, bool run) {
    std::unique_ptr<std::function<void(Handle&)>> fn(static_cast<std::function<void(Handle&)>*>(ctx));
    if (fut == nullptr) return;
    auto s = intrusive_ptr<State>::adopt(static_cast<State*>(static_cast<future_base*>(fut)));
    if (!run) return;
    Handle h(std::move(s));
    (*fn)(h);
}

}  // namespace detail

template <class T = void>
class future {
    using state = detail::with_result<T, detail::future_base>;

public:
    using value_type = T;
    using pyco_awaitable_tag = void;

    future() noexcept = default;
    explicit future(event_loop& loop) : s_(detail::intrusive_ptr<state>::adopt(new state(loop))) {}

    template <class U = T>
        requires(!std::is_void_v<U>)
    void set_result(U&& v) {
        s_->set_result(std::forward<U>(v));
    }
    void set_result()
        requires std::is_void_v<T>
    {
        s_->set_result();
    }
    void set_exception(std::exception_ptr e) { s_->set_exception(std::move(e)); }
    template <class E>
        requires(!std::same_as<std::remove_cvref_t<E>, std::exception_ptr>)
    void set_exception(E&& e) {
        s_->set_exception(std::make_exception_ptr(std::forward<E>(e)));
    }
    bool cancel(std::string msg = {}) { return s_->cancel(std::move(msg)); }

    decltype(auto) result() { return s_->result(); }
    std::exception_ptr exception() { return s_->exception(); }
    bool done() const noexcept { return s_->done(); }
    bool cancelled() const noexcept { return s_->cancelled(); }
    event_loop& get_loop() const noexcept { return s_->get_loop(); }
    std::string describe() const { return s_->describe(); }

    // Runs fn(future) on the loop once done (at once if already done).
    // Returns an id for remove_done_callback.
    std::uint32_t add_done_callback(std::function<void(future&)> fn) {
        auto holder = std::make_unique<std::function<void(future&)>>(std::move(fn));
        auto id = s_->add_callback(&detail::run_user_callback<future, state>, holder.get());
        holder.release();
        return id;
    }
    std::size_t remove_done_callback(std::uint32_t id) { return s_->remove_callback(id); }

    detail::future_awaiter<state> operator co_await() const noexcept { return detail::future_awaiter<state>(s_.get()); }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    friend bool operator==(const future& a, const future& b) noexcept { return a.s_ == b.s_; }

    detail::future_base* base() const noexcept { return s_.get(); }

private:
    template <class, class>
    friend void detail::run_user_callback(void*, void*, bool);
    explicit future(detail::intrusive_ptr<state> s) noexcept : s_(std::move(s)) {}
    detail::intrusive_ptr<state> s_;
};

// loop.create_future()
template <class T = void>
future<T> create_future(event_loop& loop) {
    return future<T>(loop);
}

}  // namespace pyco
