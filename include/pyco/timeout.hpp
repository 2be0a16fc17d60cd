// pyco/timeout.hpp — asyncio.timeout / timeout_at / Timeout: pyco::timeout.
//
// The scoped form (no lambda; `async with asyncio.timeout(5):`):
//   pyco::timeout t(5s);
//   t.enter();
//   std::exception_ptr err;
//   try {
//       co_await work();
//       t.reschedule(std::nullopt);  // never expire (Python: None)
//   } catch (...) {
//       err = std::current_exception();  // (C++ cannot co_await in a handler)
//   }
//   t.exit(err);  // timeout_error if it expired; else err, if any, again
// (For one awaitable, pyco::wait_for(work(), 5s) is the same thing.)
//
// The async_with form, with the body named first (GCC 12: see async_with.hpp):
//   auto body = [&](pyco::timeout& t) -> pyco::coroutine<void> { ... };
//   co_await pyco::async_with(pyco::timeout(5s), body);
//
// exit() is synchronous, as the whole of Timeout.__aexit__ is; the try is
// not optional when the body awaits: the expiry arrives as the body's
// cancelled_error, and only exit() turns it into timeout_error. Leaving the
// scope without exit() is reported when the timeout is destroyed inside its
// task (a closing loop destroying an abandoned frame does not count):
// "Timeout <...> was destroyed without its exit() being called ...",
// through the loop's exception handler; its own cancel() is taken back.
//
// `pyco::timeout` is both asyncio.timeout(delay) (constructed from a
// duration: the deadline is the running loop's time() + delay, fixed at
// construction as in CPython; a delay beyond the clock's range gives
// time_point::max(), which never comes) and the asyncio.Timeout class
// (constructed from a time point, or std::nullopt for "never");
// pyco::timeout_at(when) is asyncio.timeout_at. aenter() gives the body a
// reference to the timeout, so the body can reschedule() it, ask when() and
// expired().
//
// Cancellation: on expiry the timeout cancels the task that entered it (a
// plain task.cancel(): cancelled_error is raised at the body's current
// co_await). aexit() then turns that cancelled_error into timeout_error
// (nesting the cancelled_error, as `raise TimeoutError from exc_val`) only
// if the timeout expired AND task.uncancel() brings the task's cancel count
// back to what it was at aenter(): a cancellation requested by anyone else
// meanwhile (an outer timeout, a caller's task.cancel()) is not ours to
// swallow, so cancelled_error keeps propagating. Nested timeouts therefore
// each convert only their own expiry. A deadline already past at aenter()
// or reschedule() cancels through call_soon, i.e. at the body's next
// co_await, never synchronously. A timeout that expires while the body
// swallows the cancellation still calls uncancel() in aexit().
//
// The timeout cannot be copied or moved: its timer refers to it. Entering
// it twice is runtime_error (CPython's messages throughout).
//
// Thread rule: loop thread only; aenter/aexit inside the task that uses it.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <pyco/event_loop.hpp>
#include <pyco/task.hpp>

namespace pyco {

class timeout {
public:
    using time_point = event_loop::time_point;
    using duration = event_loop::duration;

    // asyncio.timeout(delay): needs a running loop (for its time()).
    template <class Rep, class Period>
    [[nodiscard]] explicit timeout(std::chrono::duration<Rep, Period> delay)
        : timeout(std::optional<time_point>(
              detail::saturating_add(get_running_loop().time(), detail::saturating_ceil<duration>(delay)))) {}
    // asyncio.Timeout(when): an absolute deadline, or std::nullopt (never).
    [[nodiscard]] explicit timeout(std::optional<time_point> when) noexcept : when_(when) {}

    timeout(const timeout&) = delete;
    timeout& operator=(const timeout&) = delete;
    ~timeout();

    // The deadline; empty: never.
    std::optional<time_point> when() const noexcept { return when_; }
    // A new deadline (std::nullopt: never). Only while entered and not yet
    // expired; a deadline not after now expires at the next co_await.
    void reschedule(std::optional<time_point> when);
    // It fired during the body (expiring or expired).
    bool expired() const noexcept { return state_ == state::expiring || state_ == state::expired; }

    // "<Timeout [active] when=123.456>", "<Timeout [expired]>"
    std::string describe() const;

    // --- the scoped form (see the top of this file) ---
    // `async with`'s entry: aenter().
    void enter() { aenter(); }
    // `async with`'s exit: aexit(body_error) — timeout_error when the
    // deadline cancelled the body — else body_error again, if any.
    void exit(std::exception_ptr body_error = nullptr) {
        aexit(body_error);
        if (body_error) std::rethrow_exception(body_error);
    }

    // --- the async context manager protocol (pyco::async_with) ---
    // The body receives this as `pyco::timeout&`.
    std::reference_wrapper<timeout> aenter();
    void aexit(std::exception_ptr e);

private:
    enum class state : unsigned char { created, active, expiring, expired, finished };
    static const char* state_name(state s) noexcept;
    void on_timeout();
    void report_not_exited() noexcept;

    std::optional<time_point> when_;
    handle timer_;
    any_task task_;
    int cancelling_ = 0;  // the task's cancelling() at aenter
    state state_ = state::created;
};

// asyncio.timeout_at(when): no loop needed until it is entered.
[[nodiscard]] inline timeout timeout_at(std::optional<event_loop::time_point> when) noexcept { return timeout(when); }

}  // namespace pyco
