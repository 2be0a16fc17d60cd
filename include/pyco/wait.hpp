// pyco/wait.hpp — asyncio.wait, asyncio.wait_for, asyncio.as_completed.
//
// wait(fs, [timeout], return_when) -> wait_result<H>{done, pending}
//   fs: a non-empty range of tasks or futures of one handle type H (use
//   any_task to mix result types); duplicates count once; both vectors keep
//   the input order. Waits until return_when holds (first_completed,
//   first_exception — which is all_completed when nothing fails — or
//   all_completed) or the timeout passes. Nothing is cancelled, on timeout
//   or otherwise. Cancelling the waiting task raises cancelled_error in it
//   and leaves fs alone. An empty fs: value_error("Set of Tasks/Futures is
//   empty."), raised when awaited. Coroutines are refused at compile time
//   (3.12: TypeError "Passing coroutines is forbidden, use tasks
//   explicitly.").
//
// wait_for(aw, timeout) -> aw's result (CPython 3.12: `async with
//   timeout(t): return await aw`). A coroutine runs inside the calling
//   task, as in 3.12. At the timeout the calling task is cancelled, which
//   cancels what it awaits; wait_for waits until that has finished
//   cancelling and then raises timeout_error. If the awaited work absorbs
//   the cancellation and returns a value (or raises something else), that
//   is what wait_for gives. A timeout <= 0 makes aw a task (a coroutine
//   never starts), cancels it and waits for it: timeout_error unless it was
//   done already. wait_for(aw, std::nullopt) just awaits. Cancelling the
//   waiting task cancels the inner work and raises cancelled_error; a
//   cancel from elsewhere that races with the timeout wins over it (the
//   task's cancelling() count decides, as in 3.12).
//
// as_completed(aws, [timeout]) -> std::vector<coroutine<T>>, one per
//   distinct awaitable (coroutines become tasks at once). Awaiting them in
//   turn gives the results (or raises the exceptions) in completion order;
//   after the timeout each one still waiting raises timeout_error. Nothing
//   is cancelled. The callbacks and the timer are set up by the call, not
//   by the first await (CPython's generator does it on its first next()).
//   A future of another loop than the running one (or of a destroyed loop)
//   raises value_error "The future belongs to a different loop than the
//   one specified as the loop argument", as CPython 3.12.
//
// Thread rule: loop thread only; everything here is awaited inside a task.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/ensure_future.hpp>
#include <pyco/detail/pointer_set.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/timeout.hpp>

namespace pyco {

enum class return_when : std::uint8_t { first_completed, first_exception, all_completed };
inline constexpr return_when first_completed = return_when::first_completed;
inline constexpr return_when first_exception = return_when::first_exception;
inline constexpr return_when all_completed = return_when::all_completed;

template <class H>
struct wait_result {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {

using opt_duration = std::optional<event_loop::duration>;

// _wait: parks the calling task until return_when holds or the timeout.
coroutine<void> wait_core(std::vector<future_base*> fs, opt_duration timeout, return_when when);
// _cancel_and_wait: cancel fut and wait until it is done (not awaiting it
// directly, so that this wait can itself be cancelled).
coroutine<void> cancel_and_wait(intrusive_ptr<future_base> fut);

template <class H>
coroutine<wait_result<H>> wait_impl(std::vector<H> fs, opt_duration timeout, return_when when) {
    if (fs.empty()) throw value_error("Set of Tasks/Futures is empty.");
    std::vector<H> distinct;
    std::vector<future_base*> ptrs;
    {
        pointer_set seen(fs.size());
        distinct.reserve(fs.size());
        ptrs.reserve(fs.size());
        for (H& h : fs) {
            if (!seen.insert(h.base())) continue;
            ptrs.push_back(h.base());
            distinct.push_back(std::move(h));
        }
    }
    co_await wait_core(ptrs, timeout, when);
    wait_result<H> out;
    for (H& h : distinct) (h.done() ? out.done : out.pending).push_back(std::move(h));
    co_return out;
}

template <class R>
concept wait_range = std::ranges::input_range<R> && future_like<std::remove_cvref_t<std::ranges::range_reference_t<R>>>;

template <class R>
concept coroutine_range =
    std::ranges::input_range<R> && is_coroutine_v<std::remove_cvref_t<std::ranges::range_reference_t<R>>>;

template <class R>
auto collect_handles(R&& fs) {
    using H = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
    std::vector<H> v;
    for (auto&& h : fs) v.push_back(h);
    return v;
}

template <class A, class T = await_value_t<A>>
coroutine<T> wait_for_impl(A aw, opt_duration timeout) {
    if (!timeout) co_return co_await std::move(aw);
    if (*timeout <= event_loop::duration::zero()) {
        auto fut = ensure_future(std::move(aw));
        using H = decltype(fut);
        if (!fut.done()) {
            co_await cancel_and_wait(intrusive_ptr<future_base>(fut.base()));
            // Cancelled as asked: the timeout. It may have finished or
            // failed instead, and then that is the answer.
            if (fut.base()->cancelled()) throw timeout_error();
        }
        try {
            if constexpr (std::is_void_v<T>) {
                take_result<H>(*fut.base());
                co_return;
            } else {
                co_return take_result<H>(*fut.base());
            }
        } catch (const cancelled_error&) {  // a cancelled_error set as its exception
        }
        throw timeout_error();
    }
    // 3.12: `async with timeouts.timeout(timeout): return await fut`.
    pyco::timeout scope(*timeout);
    scope.aenter();
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(aw);
            value.emplace(true);
        } else {
            value.emplace(co_await std::move(aw));
        }
    } catch (...) {
        error = std::current_exception();
    }
    // (No co_await in a handler: the scope's exit runs after it.)
    scope.aexit(error);  // timeout_error if the deadline cancelled the body
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) co_return std::move(*value);
}

// as_completed's shared state (CPython's closure: todo, done queue, timer).
// Its coroutines own it through as_completed_owner; when the last one goes,
// it detaches from the futures still pending, which frees the callbacks that
// hold it (nothing else breaks that cycle when a future never completes).
// todo_ is CPython's todo set: one entry per distinct future, made once and
// never moved, each entry the context of its future's callback (which holds
// a reference to the state), so a completion finds its entry at once; an
// entry is out of the set when its fut is null, and remaining_ counts the
// others.
class as_completed_state final : public refcounted {
public:
    as_completed_state(event_loop& loop, std::vector<future_base*> todo, opt_duration timeout);
    ~as_completed_state() override;
    // Queue.get(): the next done future, or null after the timeout.
    coroutine<intrusive_ptr<future_base>> get();
    std::size_t size() const noexcept { return size_; }
    void add_owner() noexcept { ++owners_; }
    void drop_owner() noexcept;

private:
    struct entry {
        intrusive_ptr<future_base> fut;  // null: out of todo
        as_completed_state* state;
        std::uint32_t id;
    };
    static void completion_cb(void* entry, void* fut, bool run);
    void on_completion(entry& e);
    void on_timeout();
    void put(intrusive_ptr<future_base> f);
    void wakeup_next();
    void detach() noexcept;

    event_loop& loop_;
    std::vector<entry> todo_;
    std::deque<intrusive_ptr<future_base>> done_;  // null: the timeout passed
    std::deque<future<void>> getters_;             // tasks waiting in get()
    handle timer_;
    std::size_t size_;
    std::size_t remaining_ = 0;  // entries still in todo
    std::size_t owners_ = 0;
};

class as_completed_owner {
public:
    explicit as_completed_owner(intrusive_ptr<as_completed_state> s) noexcept : s_(std::move(s)) { s_->add_owner(); }
    as_completed_owner(const as_completed_owner& o) noexcept : s_(o.s_) { s_->add_owner(); }
    as_completed_owner& operator=(const as_completed_owner&) = delete;
    ~as_completed_owner() { s_->drop_owner(); }
    as_completed_state* operator->() const noexcept { return s_.get(); }

private:
    intrusive_ptr<as_completed_state> s_;
};

template <class H>
coroutine<handle_value_t<H>> as_completed_one(as_completed_owner owner) {
    intrusive_ptr<future_base> f = co_await owner->get();
    if (!f) throw timeout_error();
    co_return take_result<H>(*f);
}

template <class R>
auto as_completed_impl(R&& aws, opt_duration timeout) {
    using H = ensured_t<std::ranges::range_reference_t<R>>;
    std::vector<H> todo;
    for (auto&& a : aws) {
        if constexpr (is_coroutine_v<std::remove_cvref_t<std::ranges::range_reference_t<R>>>) {
            todo.push_back(ensure_future(std::move(a)));
        } else {
            todo.push_back(ensure_future(a));
        }
    }
    std::vector<future_base*> ptrs;
    {
        pointer_set seen(todo.size());
        ptrs.reserve(todo.size());
        for (const H& h : todo) {
            if (seen.insert(h.base())) ptrs.push_back(h.base());
        }
    }
    // CPython 3.12 takes the current loop and refuses a future of another
    // one (ensure_future(f, loop=loop)); outside a running loop, the first
    // future's. A future whose loop is gone belongs to no loop.
    event_loop* running = running_loop();
    event_loop* loop = running ? running : ptrs.empty() ? &get_running_loop() : ptrs.front()->loop_if_alive();
    for (future_base* f : ptrs) {
        if (f->loop_if_alive() != loop || loop == nullptr) {
            throw value_error("The future belongs to a different loop than the one specified as the loop argument");
        }
    }
    auto state = intrusive_ptr<as_completed_state>::adopt(new as_completed_state(*loop, std::move(ptrs), timeout));
    std::vector<coroutine<handle_value_t<H>>> out;
    out.reserve(state->size());
    for (std::size_t i = 0; i < state->size(); ++i) {
        out.push_back(as_completed_one<H>(as_completed_owner(state)));
        coroutine_access::unawaited_ok(out.back());  // as if CPython never yielded it
    }
    return out;
}

template <class R>
concept as_completed_range = std::ranges::input_range<R> && ensurable<std::ranges::range_reference_t<R>>;

}  // namespace detail

// asyncio.wait(fs, return_when=...)
template <detail::wait_range R>
coroutine<wait_result<std::remove_cvref_t<std::ranges::range_reference_t<R>>>> wait(R&& fs,
                                                                                     return_when when = all_completed) {
    return detail::wait_impl(detail::collect_handles(std::forward<R>(fs)), std::nullopt, when);
}

// asyncio.wait(fs, timeout=..., return_when=...)
template <detail::wait_range R, class Rep, class Period>
coroutine<wait_result<std::remove_cvref_t<std::ranges::range_reference_t<R>>>> wait(
    R&& fs, std::chrono::duration<Rep, Period> timeout, return_when when = all_completed) {
    return detail::wait_impl(detail::collect_handles(std::forward<R>(fs)),
                             detail::saturating_ceil<event_loop::duration>(timeout), when);
}

// 3.12 refuses coroutines ("Passing coroutines is forbidden, use tasks
// explicitly."): make tasks with create_task first.
template <detail::coroutine_range R, class... Rest>
void wait(R&& fs, Rest&&...) = delete;

// asyncio.wait_for(aw, timeout). A coroutine is passed as an rvalue; a
// task or future is copied (a handle).
template <class A, class Rep, class Period>
    requires detail::ensurable<A>
coroutine<detail::await_value_t<A>> wait_for(A&& aw, std::chrono::duration<Rep, Period> timeout) {
    static_assert(!is_coroutine_v<std::remove_cvref_t<A>> || !std::is_lvalue_reference_v<A>,
                  "a coroutine runs once: pass it as an rvalue (std::move or a call)");
    return detail::wait_for_impl<std::remove_cvref_t<A>>(std::forward<A>(aw),
                                                         detail::saturating_ceil<event_loop::duration>(timeout));
}

// asyncio.wait_for(aw, None): no timeout.
template <class A>
    requires detail::ensurable<A>
coroutine<detail::await_value_t<A>> wait_for(A&& aw, std::nullopt_t) {
    static_assert(!is_coroutine_v<std::remove_cvref_t<A>> || !std::is_lvalue_reference_v<A>,
                  "a coroutine runs once: pass it as an rvalue (std::move or a call)");
    return detail::wait_for_impl<std::remove_cvref_t<A>>(std::forward<A>(aw), std::nullopt);
}

// asyncio.as_completed(fs)
template <detail::as_completed_range R>
[[nodiscard("co_await each of them")]] auto as_completed(R&& aws) {
    return detail::as_completed_impl(std::forward<R>(aws), std::nullopt);
}

// asyncio.as_completed(fs, timeout=...)
template <detail::as_completed_range R, class Rep, class Period>
[[nodiscard("co_await each of them")]] auto as_completed(R&& aws, std::chrono::duration<Rep, Period> timeout) {
    return detail::as_completed_impl(std::forward<R>(aws), detail::saturating_ceil<event_loop::duration>(timeout));
}

}  // namespace pyco
