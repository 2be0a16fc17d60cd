// pyco/semaphore.hpp — asyncio.Semaphore and BoundedSemaphore:
// pyco::semaphore, pyco::bounded_semaphore.
//
//   co_await sem.acquire();  ...  sem.release();
//   { auto held = co_await sem.scoped(); ... }     // released at `}`
//   co_await pyco::async_with(sem, body);
//
// Fairness (CPython 3.12's exactly, gh-90155): FIFO. acquire() takes a
// permit at once only when the value is positive and no live (uncancelled)
// task is queued; otherwise it queues even if permits are free. release()
// adds a permit and hands it to the first waiter not yet woken: the permit
// is reserved for that waiter at once (value decremented on its behalf),
// so no later arrival can take it. When a woken waiter runs it wakes as
// many further waiters as there are free permits.
//
// Cancel safety: cancelling a task blocked in acquire() removes it from the
// queue and raises cancelled_error. If a permit had already been handed to
// it, the permit is returned and passed to the next waiter: permits are
// never lost (CPython's test_acquire_hang, test_acquire_cancel_before_awoken).
// A task destroyed while it waits (its loop closed) leaves the queue.
//
// Errors: semaphore(value < 0) raises value_error("Semaphore initial value
// must be >= 0"); bounded_semaphore::release() past its initial value raises
// value_error("BoundedSemaphore released too many times").
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>

#include <pyco/detail/wait_queue.hpp>
#include <pyco/errors.hpp>

namespace pyco {

class semaphore {
public:
    class acquire_awaiter;

    explicit semaphore(std::int64_t value = 1) : value_(value) {
        if (value < 0) throw value_error("Semaphore initial value must be >= 0");
    }
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    // Semaphore.locked(): true if acquire() would not succeed at once (no
    // permit, or FIFO: live tasks are queued ahead).
    bool locked() const noexcept { return value_ == 0 || waiters_.live() > 0; }
    // await Semaphore.acquire(): true once a permit is held.
    acquire_awaiter acquire() noexcept;
    // Semaphore.release()
    void release() {
        ++value_;
        wake_up_next();
    }
    detail::scoped_awaiter<semaphore, acquire_awaiter> scoped() noexcept;

    detail::void_awaiter<acquire_awaiter> aenter() noexcept;
    void aexit(std::exception_ptr) { release(); }

    // The internal counter (asyncio's _value): free, unreserved permits.
    std::int64_t value() const noexcept { return value_; }
    // Tasks queued in acquire() (woken or cancelled ones not yet run included).
    std::size_t waiters() const noexcept { return waiters_.size(); }

protected:
    std::int64_t value_;

private:
    // Hands a permit to the first waiter not yet woken; false if none.
    bool wake_up_next() {
        for (detail::waiter* w = waiters_.front(); w != nullptr; w = w->next_waiter()) {
            if (!w->done()) {
                --value_;
                w->set_result();
                return true;
            }
        }
        return false;
    }
    detail::wait_queue waiters_;
};

class [[nodiscard("acquire() does nothing until awaited: co_await it")]] semaphore::acquire_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit acquire_awaiter(semaphore& s) noexcept : s_(&s) {}

    bool await_ready() noexcept {
        if (!s_->locked()) {
            --s_->value_;
            return true;
        }
        return false;
    }
    void await_suspend(std::coroutine_handle<> h) { p_.suspend(s_->waiters_, h, "Semaphore"); }
    bool await_resume() {
        if (!p_.parked()) return true;
        detail::wait_outcome o = p_.resume();
        // A permit handed to us that we will not use goes back.
        if (o.error && o.woken) ++s_->value_;
        // New waiters may have queued behind us (FIFO) while permits were
        // free: wake as many as the permits allow.
        while (s_->value_ > 0) {
            if (!s_->wake_up_next()) break;
        }
        if (o.error) [[unlikely]] std::rethrow_exception(o.error);
        return true;
    }

private:
    semaphore* s_;
    detail::parking p_;
};

inline semaphore::acquire_awaiter semaphore::acquire() noexcept { return acquire_awaiter(*this); }
inline detail::void_awaiter<semaphore::acquire_awaiter> semaphore::aenter() noexcept {
    return detail::void_awaiter<acquire_awaiter>(acquire_awaiter(*this));
}
inline detail::scoped_awaiter<semaphore, semaphore::acquire_awaiter> semaphore::scoped() noexcept {
    return {*this, acquire_awaiter(*this)};
}

// asyncio.BoundedSemaphore: release() may not raise the value above the
// initial one.
class bounded_semaphore : public semaphore {
public:
    explicit bounded_semaphore(std::int64_t value = 1) : semaphore(value), bound_(value) {}

    void release() {
        if (value_ >= bound_) throw value_error("BoundedSemaphore released too many times");
        semaphore::release();
    }
    void aexit(std::exception_ptr) { release(); }
    detail::scoped_awaiter<bounded_semaphore, acquire_awaiter> scoped() noexcept {
        return {*this, acquire()};
    }

private:
    std::int64_t bound_;
};

}  // namespace pyco
