// pyco/task.hpp — asyncio.Task: pyco::task<T>, create_task, current_task.
//
// A task runs a coroutine on the loop, step by step (the protocol and its
// cancellation rules are in detail/task_base.hpp). It is a future of the
// coroutine's result: await it, add done callbacks, cancel it.
//
// Unlike CPython, a pending task stays alive while the loop holds it even
// if every handle is dropped (CPython keeps only a weak reference and can
// lose a running task). A failed task that nobody asked about is reported
// when its last handle goes: "Task exception was never retrieved".
//
// Cancellation (CPython's exact rules): cancel(msg) raises cancelled_error
// at the task's current co_await; the coroutine may catch it (then call
// uncancel() if it means to go on); a task cancelled before its first step
// never runs its body; a task that cancels itself and then returns ends
// cancelled; one that catches cancellation and returns a value does not.
//
// Thread rule: loop thread only.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>

namespace pyco {

template <class T>
class task;

namespace detail {

template <class T>
class task_state final : public with_result<T, task_base> {
public:
    task_state(event_loop& loop, typename coroutine<T>::handle_type h)
        : with_result<T, task_base>(loop, h, &h.promise()), promise_(&h.promise()) {}

private:
    void take_result() override {
        if constexpr (std::is_void_v<T>) {
            this->set_result();
        } else {
            this->set_result(std::move(*promise_->result_));
        }
    }
    typename coroutine<T>::promise_type* promise_;
};

}  // namespace detail

// A task of any result type (what current_task() and all_tasks() give).
class any_task {
public:
    using pyco_awaitable_tag = void;

    any_task() noexcept = default;
    explicit any_task(detail::task_base* t) noexcept : s_(t) {}

    bool cancel(std::string msg = {}) { return s_->cancel(std::move(msg)); }
    int cancelling() const noexcept { return s_->cancelling(); }
    int uncancel() noexcept { return s_->uncancel(); }
    bool done() const noexcept { return s_->done(); }
    bool cancelled() const noexcept { return s_->cancelled(); }
    std::exception_ptr exception() { return s_->exception(); }
    std::string get_name() const { return s_->get_name(); }
    void set_name(std::string name) { s_->set_name(std::move(name)); }
    std::vector<frame_info> get_stack() const { return s_->get_stack(); }
    // "Stack for <Task ...> (most recent call last):" and one line a frame.
    void print_stack(std::FILE* out = stderr) const;
    std::string describe() const { return s_->describe(); }
    event_loop& get_loop() const noexcept { return s_->get_loop(); }

    std::uint32_t add_done_callback(std::function<void(any_task&)> fn) {
        auto holder = std::make_unique<std::function<void(any_task&)>>(std::move(fn));
        auto id = s_->add_callback(&detail::run_user_callback<any_task, detail::task_base>, holder.get());
        holder.release();
        return id;
    }
    std::size_t remove_done_callback(std::uint32_t id) { return s_->remove_callback(id); }

    // Awaiting an untyped task waits for it and raises what it raised.
    detail::future_awaiter<detail::task_base> operator co_await() const noexcept {
        return detail::future_awaiter<detail::task_base>(s_.get());
    }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    friend bool operator==(const any_task& a, const any_task& b) noexcept { return a.s_ == b.s_; }
    detail::task_base* base() const noexcept { return s_.get(); }

protected:
    explicit any_task(detail::intrusive_ptr<detail::task_base> s) noexcept : s_(std::move(s)) {}
    detail::intrusive_ptr<detail::task_base> s_;

    template <class, class>
    friend void detail::run_user_callback(void*, void*, bool);
};

template <class T = void>
class task : public any_task {
    using state = detail::task_state<T>;

public:
    using value_type = T;

    task() noexcept = default;

    decltype(auto) result() { return typed()->result(); }

    std::uint32_t add_done_callback(std::function<void(task&)> fn) {
        auto holder = std::make_unique<std::function<void(task&)>>(std::move(fn));
        auto id = s_->add_callback(&detail::run_user_callback<task, detail::task_base>, holder.get());
        holder.release();
        return id;
    }

    detail::future_awaiter<state> operator co_await() const noexcept {
        return detail::future_awaiter<state>(typed());
    }

private:
    template <class U>
    friend task<U> create_task(event_loop& loop, coroutine<U> coro, std::string name);
    template <class, class>
    friend void detail::run_user_callback(void*, void*, bool);

    explicit task(detail::intrusive_ptr<detail::task_base> s) noexcept : any_task(std::move(s)) {}
    state* typed() const noexcept { return static_cast<state*>(s_.get()); }
};

// loop.create_task(coro, name=)
template <class T>
task<T> create_task(event_loop& loop, coroutine<T> coro, std::string name = {}) {
    if (loop.is_closed()) throw runtime_error("Event loop is closed");
    auto h = detail::coroutine_access::take(coro);
    detail::task_state<T>* s = nullptr;
    try {
        s = new detail::task_state<T>(loop, h);
    } catch (...) {
        h.destroy();  // taken from coro: nobody else will
        throw;
    }
    // Born with one reference (ours); the constructor took the self-reference.
    task<T> t{detail::intrusive_ptr<detail::task_base>::adopt(s)};
    if (!name.empty()) t.set_name(std::move(name));
    return t;
}

// asyncio.create_task(coro, name=): on the running loop.
template <class T>
task<T> create_task(coroutine<T> coro, std::string name = {}) {
    return create_task(get_running_loop(), std::move(coro), std::move(name));
}

// asyncio.current_task(): empty outside a task.
any_task current_task();
// asyncio.all_tasks(): the running loop's tasks not yet done.
std::vector<any_task> all_tasks();
std::vector<any_task> all_tasks(event_loop& loop);

// ---- event_loop members that need tasks ----------------------------------

namespace detail {
void run_until_done(event_loop& loop, future_base& f);
// run_until_complete's checks, made before a coroutine becomes a task
// (CPython's _check_closed and _check_running): a refused run leaves no
// task behind to be reported as "destroyed but pending".
void check_can_run(event_loop& loop);
}  // namespace detail

template <class T>
T event_loop::run_until_complete(future<T> f) {
    detail::run_until_done(*this, *f.base());
    if constexpr (std::is_void_v<T>) {
        f.result();
    } else {
        return std::move(f.result());
    }
}

template <class T>
T event_loop::run_until_complete(task<T> t) {
    detail::run_until_done(*this, *t.base());
    if constexpr (std::is_void_v<T>) {
        t.result();
    } else {
        return std::move(t.result());
    }
}

template <class T>
T event_loop::run_until_complete(coroutine<T> c) {
    detail::check_can_run(*this);
    task<T> t = pyco::create_task(*this, std::move(c));
    // If the loop stops first the caller gets runtime_error; the task left
    // pending is not reported again when the loop closes (CPython's
    // `future._log_destroy_pending = False` for the task it made).
    t.base()->set_log_destroy_pending(false);
    try {
        detail::run_until_done(*this, *t.base());
    } catch (...) {
        // The caller never sees this task: what it raised is not left to be
        // reported as never retrieved (CPython does the same).
        if (t.done() && !t.cancelled()) t.exception();
        throw;
    }
    if constexpr (std::is_void_v<T>) {
        t.result();
    } else {
        return std::move(t.result());
    }
}

template <class T>
task<T> event_loop::create_task(coroutine<T> c, std::string name) {
    return pyco::create_task(*this, std::move(c), std::move(name));
}

template <class T>
future<T> event_loop::create_future() {
    return future<T>(*this);
}

}  // namespace pyco
