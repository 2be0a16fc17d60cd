// pyco/event.hpp — asyncio.Event: pyco::event.
//
//   co_await ev.wait();   ev.set();   ev.clear();   ev.is_set();
//
// Ordering (CPython's): set() wakes every task waiting at that moment, in
// the order they started waiting; each resumes when the loop runs its step
// (so a task that sleeps when set() is called runs after them if it was
// scheduled after). wait() on a set event returns at once without yielding.
// set(); clear(); before the waiters ran still wakes them: a wake-up, once
// given, is kept.
//
// Cancel safety: cancelling a task blocked in wait() removes it from the
// waiters and raises cancelled_error; nothing is lost (an event has no
// permits to hand on).
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>

#include <pyco/detail/wait_queue.hpp>

namespace pyco {

class event {
public:
    class wait_awaiter;

    event() = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    // Event.is_set()
    bool is_set() const noexcept { return value_; }
    // Event.set(): wakes all current waiters.
    void set() {
        if (value_) return;
        value_ = true;
        waiters_.wake_pending(waiters_.size());
    }
    // Event.clear()
    void clear() noexcept { value_ = false; }
    // await Event.wait(): true once the flag is set.
    wait_awaiter wait() noexcept;

    // Tasks blocked in wait() (woken ones that have not run yet included).
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    detail::wait_queue waiters_;
    bool value_ = false;
};

class [[nodiscard("wait() does nothing until awaited: co_await it")]] event::wait_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit wait_awaiter(event& e) noexcept : e_(&e) {}
    bool await_ready() const noexcept { return e_->value_; }
    void await_suspend(std::coroutine_handle<> h) { p_.suspend(e_->waiters_, h, "Event"); }
    bool await_resume() {
        if (!p_.parked()) return true;
        detail::wait_outcome o = p_.resume();
        if (o.error) [[unlikely]] std::rethrow_exception(o.error);
        return true;
    }

private:
    event* e_;
    detail::parking p_;
};

inline event::wait_awaiter event::wait() noexcept { return wait_awaiter(*this); }

}  // namespace pyco
