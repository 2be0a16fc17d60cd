// pyco/lock.hpp — asyncio.Lock: pyco::lock.
//
//   co_await mtx.acquire();  ...  mtx.release();        // Python's names
//   { auto held = co_await mtx.scoped(); ... }           // RAII: released at `}`
//   co_await pyco::async_with(mtx, body);                // `async with lock:`
//
// Not owned by a task: any task may release it (as in asyncio).
//
// Fairness (CPython 3.12's exactly): waiters are served FIFO. acquire()
// takes the lock at once only if it is free and every queued waiter is
// cancelled; otherwise it queues, even when the lock is free (a woken
// waiter that has not run yet keeps its turn). release() wakes the first
// queued waiter if it is not already woken or cancelled; the woken task
// takes the lock when it runs (one loop iteration later).
//
// Cancel safety: cancelling a task blocked in acquire() makes it lose its
// place in the queue and raises cancelled_error; the lock is not taken. If
// the cancellation comes after release() woke it (the race of CPython's
// test_cancel_release_race / test_finished_waiter_cancelled), the wake-up is
// passed on to the next waiter, so no hand-off is lost. A task destroyed
// while it waits (its loop closed) simply leaves the queue.
//
// Errors: release() of an unlocked lock raises
// runtime_error("Lock is not acquired."). Awaiting outside a task raises
// runtime_error. A lock used from two loops raises runtime_error("... is
// bound to a different event loop").
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>
#include <exception>

#include <pyco/detail/wait_queue.hpp>
#include <pyco/errors.hpp>

namespace pyco {

class lock {
public:
    class acquire_awaiter;

    lock() = default;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;

    // Lock.locked()
    bool locked() const noexcept { return locked_; }
    // await Lock.acquire(): true once held.
    acquire_awaiter acquire() noexcept;
    // Lock.release()
    void release() {
        if (!locked_) throw runtime_error("Lock is not acquired.");
        locked_ = false;
        wake_up_first();
    }
    // co_await scoped() gives a guard that releases the lock when it dies.
    detail::scoped_awaiter<lock, acquire_awaiter> scoped() noexcept;

    // async with (pyco::async_with): aenter acquires, aexit releases.
    detail::void_awaiter<acquire_awaiter> aenter() noexcept;
    void aexit(std::exception_ptr) { release(); }

    // Tasks queued in acquire() (cancelled ones not yet gone included).
    std::size_t waiters() const noexcept { return waiters_.size(); }

private:
    // Ensures the first waiter will wake up (if it is not already woken).
    void wake_up_first() {
        detail::waiter* w = waiters_.front();
        if (w != nullptr && !w->done()) w->set_result();
    }

    detail::wait_queue waiters_;
    bool locked_ = false;
};

class [[nodiscard("acquire() does nothing until awaited: co_await it")]] lock::acquire_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit acquire_awaiter(lock& l) noexcept : l_(&l) {}

    bool await_ready() noexcept {
        // Fair: take it now only if nobody (live) is queued.
        if (!l_->locked_ && l_->waiters_.all_cancelled()) {
            l_->locked_ = true;
            return true;
        }
        return false;
    }
    void await_suspend(std::coroutine_handle<> h) { p_.suspend(l_->waiters_, h, "Lock"); }
    bool await_resume() {
        if (!p_.parked()) return true;
        detail::wait_outcome o = p_.resume();
        if (o.error) [[unlikely]] {
            // The lock invariant: if the lock is free, the head waiter
            // (if any) must be on its way.
            if (!l_->locked_) l_->wake_up_first();
            std::rethrow_exception(o.error);
        }
        l_->locked_ = true;
        return true;
    }

private:
    lock* l_;
    detail::parking p_;
};

inline lock::acquire_awaiter lock::acquire() noexcept { return acquire_awaiter(*this); }
inline detail::void_awaiter<lock::acquire_awaiter> lock::aenter() noexcept {
    return detail::void_awaiter<acquire_awaiter>(acquire_awaiter(*this));
}
inline detail::scoped_awaiter<lock, lock::acquire_awaiter> lock::scoped() noexcept {
    return {*this, acquire_awaiter(*this)};
}

}  // namespace pyco
