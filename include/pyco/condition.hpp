// pyco/condition.hpp — asyncio.Condition: pyco::condition.
//
//   pyco::condition cv;               // its own lock
//   pyco::condition cv2(some_lock);   // Condition(lock): shares a pyco::lock
//   { auto held = co_await cv.scoped();
//     auto ready = [&] { return !items.empty(); };
//     co_await cv.wait_for(ready); ... }
//   cv.notify(); cv.notify(n); cv.notify_all();
//
// wait() must be called with the lock held: it releases the lock, waits to
// be notified, and takes the lock again before it returns — always, also
// when it is cancelled (CPython's "must re-acquire lock even if wait is
// cancelled"), so the caller's guard stays valid. It returns true; like
// asyncio's, it may return spuriously, so re-check (wait_for does).
//
// Ordering (CPython's): notify(n) wakes the first n waiters not yet woken,
// in the order they started waiting; each then queues on the lock, FIFO.
//
// Cancel safety: a task cancelled in wait() — while waiting to be notified,
// or after a notify while it re-takes the lock — still re-takes the lock,
// then raises the cancelled_error it got (the same exception object), and
// passes one notification on to the next waiter, so a notify that raced
// with the cancellation is never lost (test_cancelled_wakeup, ..._relock).
//
// GCC 12: a lambda capturing by value something with a destructor, built
// inside the co_await expression, is destroyed twice by GCC 12; wait_for
// refuses such an rvalue at compile time (as async_with does): name it
// first (`auto p = [v]{...}; co_await cv.wait_for(p);`). `[&]` is fine.
//
// Errors: wait() and notify() without the lock raise runtime_error("cannot
// wait on un-acquired lock") / ("cannot notify on un-acquired lock").
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>
#include <exception>
#include <type_traits>

#include <pyco/async_with.hpp>
#include <pyco/coroutine.hpp>
#include <pyco/detail/wait_queue.hpp>
#include <pyco/errors.hpp>
#include <pyco/lock.hpp>

namespace pyco {

class condition {
public:
    condition() noexcept : lock_(&own_) {}
    // Condition(lock): uses `l`, which must outlive the condition.
    explicit condition(pyco::lock& l) noexcept : lock_(&l) {}
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;

    // The underlying lock's locked(), acquire() and release().
    bool locked() const noexcept { return lock_->locked(); }
    pyco::lock::acquire_awaiter acquire() noexcept { return lock_->acquire(); }
    void release() { lock_->release(); }
    detail::scoped_awaiter<pyco::lock, pyco::lock::acquire_awaiter> scoped() noexcept { return lock_->scoped(); }
    auto aenter() noexcept { return lock_->aenter(); }
    void aexit(std::exception_ptr) { release(); }
    pyco::lock& underlying_lock() const noexcept { return *lock_; }

    // await Condition.wait()
    coroutine<bool> wait();

    // await Condition.wait_for(predicate): waits until predicate() is
    // truthy; returns its last value. Needs the lock unless the predicate
    // is already true.
    template <class Pred>
    auto wait_for(Pred&& pred) -> coroutine<std::decay_t<std::invoke_result_t<std::decay_t<Pred>&>>> {
        static_assert(!detail::gcc12_destroys_twice_v<Pred>,
                      "GCC 12 destroys a lambda that captures by value twice when it is made inside a co_await "
                      "expression: name it first (auto ready = [...] {...}; co_await cv.wait_for(ready);)");
        return wait_for_impl(std::decay_t<Pred>(std::forward<Pred>(pred)));
    }

    // Condition.notify(n=1)
    void notify(std::size_t n = 1) {
        if (!locked()) throw runtime_error("cannot notify on un-acquired lock");
        waiters_.wake_pending(n);
    }
    // Condition.notify_all()
    void notify_all() { notify(waiters_.size()); }

    // Tasks in wait() not yet gone (woken ones included).
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    template <class Pred>
    auto wait_for_impl(Pred pred) -> coroutine<std::decay_t<std::invoke_result_t<Pred&>>> {
        auto result = pred();
        while (!result) {
            co_await wait();
            result = pred();
        }
        co_return result;
    }

    pyco::lock own_;
    pyco::lock* lock_;
    detail::wait_queue waiters_;
};

inline coroutine<bool> condition::wait() {
    if (!locked()) throw runtime_error("cannot wait on un-acquired lock");
    release();
    std::exception_ptr err;
    try {
        detail::wait_outcome o = co_await detail::park_in(waiters_, "Condition");
        err = o.error;
    } catch (...) {
        err = std::current_exception();  // could not wait (outside a task, ...)
    }
    // Must re-acquire the lock even if the wait was cancelled; only a
    // cancellation is retried (anything else would spin).
    for (;;) {
        try {
            co_await lock_->acquire();
            break;
        } catch (const cancelled_error&) {
            err = std::current_exception();
        }
    }
    if (err) {
        // We may have been notified and then cancelled: hand the
        // notification on (a spurious wake-up at worst, which is allowed).
        waiters_.wake_pending(1);
        std::rethrow_exception(err);
    }
    co_return true;
}

}  // namespace pyco
