// pyco/sleep.hpp — asyncio.sleep: pyco::sleep(duration).
//
// sleep(0s) (or less) yields to the loop once: the task's next step is
// queued behind what is ready now. A longer sleep parks the task on a
// future that a timer completes. A delay too long for the clock
// (hours::max(), a double of 1e300, NaN) waits until the clock's end, i.e.
// for ever, as CPython's sleep(1e300) does (detail/saturate.hpp).
// Cancel safety: cancelling a sleeping task cancels the sleep (and its
// timer) and raises cancelled_error from it.
// Awaitable inside a task only.
#pragma once

#include <chrono>
#include <coroutine>

#include <pyco/detail/future_base.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/event_loop.hpp>

namespace pyco {

class [[nodiscard("sleep() does nothing until awaited: co_await it")]] sleep_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit sleep_awaiter(event_loop::duration d) noexcept : d_(d) {}

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume();

private:
    using state = detail::with_result<void, detail::future_base>;
    event_loop::duration d_;
    detail::task_base* task_ = nullptr;
    detail::intrusive_ptr<state> fut_;
    handle timer_;
};

template <class Rep, class Period>
sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return sleep_awaiter(detail::saturating_ceil<event_loop::duration>(d));
}

}  // namespace pyco
