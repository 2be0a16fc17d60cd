// pyco/detail/ensure_future.hpp — asyncio's ensure_future for the combinators.
//
// gather, shield, wait_for and as_completed take "awaitables" as CPython
// does and work on futures: a future-like handle (future, task, any_task,
// gather_future) is used as it is; a coroutine becomes a task; any other
// awaitable is awaited by a small coroutine that becomes a task
// (CPython's _wrap_awaitable).
//
// handle_traits<H> names, for each future-like handle, its state type, so
// that code holding only a future_base* (a done callback) can read the typed
// result without holding the handle: holding it would make the future own
// a callback that owns the future, a cycle no one breaks when the future
// never completes.
//
// Thread rule: loop thread only.
#pragma once

#include <concepts>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include <pyco/async_with.hpp>
#include <pyco/coroutine.hpp>
#include <pyco/detail/future_base.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/future.hpp>
#include <pyco/task.hpp>

namespace pyco::detail {

// A handle to a future's state: what CPython's isfuture() accepts.
template <class H>
concept future_like = requires(const H& h) {
    { h.base() } -> std::convertible_to<future_base*>;
    { h.done() } -> std::same_as<bool>;
};

template <class H>
struct handle_traits;  // state: the type behind base(); value: the result type

template <class T>
struct handle_traits<future<T>> {
    using state = with_result<T, future_base>;
    using value = T;
};
template <class T>
struct handle_traits<task<T>> {
    using state = with_result<T, task_base>;
    using value = T;
};
template <>
struct handle_traits<any_task> {
    using state = task_base;
    using value = void;
};

template <class H>
using handle_value_t = typename handle_traits<H>::value;

// A result as gather and shield hand it on: copied when it can be (the
// child keeps its result, as a Python future does), else moved out.
template <class H>
handle_value_t<H> take_result(future_base& b) {
    using S = typename handle_traits<H>::state;
    using T = handle_value_t<H>;
    auto& s = static_cast<S&>(b);
    if constexpr (std::is_void_v<T>) {
        s.raise_if_failed();
    } else if constexpr (std::is_copy_constructible_v<T>) {
        return T(s.result());
    } else {
        return T(std::move(s.result()));
    }
}

// The cancelled_error a cancelled future raises (its message kept).
std::exception_ptr cancellation_of(future_base& f);
// The message of a cancelled future's cancelled_error ("" if none).
std::string cancel_message(future_base& f);
// True when `e` holds a cancelled_error.
bool is_cancellation(const std::exception_ptr& e) noexcept;

template <class A>
using await_value_t = std::remove_cvref_t<await_result_t<A>>;

// CPython's _wrap_awaitable: a coroutine that awaits `a`.
template <class A>
coroutine<await_value_t<A>> await_inline(A a) {
    if constexpr (std::is_void_v<await_value_t<A>>) {
        co_await std::move(a);
    } else {
        co_return co_await std::move(a);
    }
}

// The handle type ensure_future gives for an argument of type A.
template <class A, class D = std::remove_cvref_t<A>>
using ensured_t = std::conditional_t<future_like<D>, D, task<await_value_t<D>>>;

template <class A>
concept ensurable = future_like<std::remove_cvref_t<A>> || awaitable<std::remove_cvref_t<A>>;

template <class A>
ensured_t<A> ensure_future(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (future_like<D>) {
        return D(a);
    } else if constexpr (is_coroutine_v<D>) {
        static_assert(!std::is_lvalue_reference_v<A>,
                      "a coroutine runs once: pass it as an rvalue (std::move or a call)");
        return create_task(std::move(a));
    } else {
        return create_task(await_inline<D>(std::forward<A>(a)));
    }
}

}  // namespace pyco::detail
