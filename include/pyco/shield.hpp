// pyco/shield.hpp — asyncio.shield: pyco::shield(aw).
//
//   T v = co_await pyco::shield(work());
//
// shield(aw) makes aw a future (a coroutine becomes a task) and returns an
// outer future<T> that follows it. Cancellation: cancelling the outer
// future — or the task awaiting it, which cancels what it awaits — cancels
// only the outer one: the awaiting task gets cancelled_error at once and
// the inner work runs on to its end. The inner cancelled by other means
// cancels the outer. A failure of the inner after the outer was cancelled
// is marked retrieved (nobody could see it otherwise).
//
// A future already done is returned as it is; a task already done gives a
// done future with the same result, exception or cancellation.
//
// Unlike CPython, nothing needs to keep the inner task referenced: a
// pending pyco task keeps itself alive.
//
// Thread rule: loop thread only.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <pyco/detail/ensure_future.hpp>
#include <pyco/future.hpp>

namespace pyco {

namespace detail {

// outer follows a done inner. A cancelled inner cancels outer with
// `msg` (CPython's callback cancels it without one).
template <class H, class T>
void shield_copy(future_base& inner, future<T>& outer, std::string msg) {
    if (inner.cancelled()) {
        outer.cancel(std::move(msg));
    } else if (std::exception_ptr e = inner.exception()) {
        outer.set_exception(std::move(e));
    } else if constexpr (std::is_void_v<T>) {
        outer.set_result();
    } else {
        outer.set_result(take_result<H>(inner));
    }
}

// The inner's done callback. ctx: the outer future (a reference to it).
template <class H>
void shield_inner_done(void* ctx, void* fut, bool run) {
    using T = handle_value_t<H>;
    std::unique_ptr<future<T>> outer(static_cast<future<T>*>(ctx));
    if (fut == nullptr) return;
    auto inner = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (!run) return;
    if (outer->cancelled()) {
        if (!inner->cancelled()) inner->mark_retrieved();
        return;
    }
    shield_copy<H>(*inner, *outer, {});
}

}  // namespace detail

template <class A>
    requires detail::ensurable<A>
[[nodiscard("co_await the shield")]] auto shield(A&& aw) -> future<detail::handle_value_t<detail::ensured_t<A>>> {
    using H = detail::ensured_t<A>;
    using T = detail::handle_value_t<H>;
    H inner = detail::ensure_future(std::forward<A>(aw));
    detail::future_base& b = *inner.base();
    if constexpr (std::is_same_v<H, future<T>>) {
        if (b.done()) return inner;  // CPython's shortcut: the future itself
    }
    future<T> outer(b.get_loop());
    if (b.done()) {
        detail::shield_copy<H>(b, outer, b.cancelled() ? detail::cancel_message(b) : std::string());
        return outer;
    }
    // The callback holds the outer future, never the inner one: an inner
    // future that never completes must not keep itself alive.
    auto ctx = std::make_unique<future<T>>(outer);
    b.add_callback(&detail::shield_inner_done<H>, ctx.get());
    ctx.release();
    return outer;
}

}  // namespace pyco
