// pyco/detail/wait_queue.hpp — the one fair FIFO wait queue under every
// sync primitive and queue (asyncio's `_waiters` deques of futures).
//
// A waiter is a future (detail::waiter), as in asyncio: the waiting task
// parks on it through the task step protocol (detail/task_base.hpp), a
// wake-up is set_result() on it (the task's step is queued, in the order of
// the wake-ups), and cancelling the task cancels it. So every wake-up and
// every cancellation goes through the one path futures already have, and a
// woken waiter can still be cancelled before it runs: the primitives handle
// that race exactly as CPython does (a permit, a lock hand-off or a queue
// slot is passed on, never lost).
//
// Invariants:
//   - a waiter is linked in at most one queue; it is linked from the moment
//     its task parks until it is unlinked by the waker (queues: popleft) or
//     by its own task when that resumes (locks, events, conditions: the
//     `finally: self._waiters.remove(fut)` of asyncio);
//   - woken = done() && !cancelled(); a waiter never leaves `done`;
//   - n_cancelled_ counts the linked waiters that are cancelled, so "are all
//     waiters cancelled?" (Lock.acquire's fast path, Semaphore.locked()) is
//     O(1) instead of asyncio's scan.
// Destroying a queue detaches its waiters, so a task abandoned later (its
// frame destroyed by a closing loop) unlinks harmlessly.
//
// parking is the one suspension primitive: every wait of every primitive in
// pyco parks with parking::suspend() and learns how the wait ended from
// parking::resume(). Nothing here allocates except the waiter itself.
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <string>

#include <pyco/detail/future_base.hpp>
#include <pyco/detail/intrusive.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace pyco::detail {

class wait_queue;

// One waiting task's future, linked in a wait_queue.
class waiter final : public with_result<void, future_base> {
public:
    explicit waiter(event_loop& loop) noexcept : with_result<void, future_base>(loop) {}

    bool woken() const noexcept { return done() && !cancelled(); }
    bool linked() const noexcept { return queue_ != nullptr; }
    // The next waiter in the same queue, or null.
    waiter* next_waiter() const noexcept { return next_; }

    // Future.cancel(): counted by the queue the waiter is linked in.
    bool cancel(std::string msg = {}) override;

    // The cancelled_error to raise for a cancelled waiter (the message kept).
    std::exception_ptr cancel_error() const {
        return exception_ ? exception_ : std::make_exception_ptr(cancelled_error());
    }

private:
    friend class wait_queue;
    waiter* prev_ = nullptr;
    waiter* next_ = nullptr;
    wait_queue* queue_ = nullptr;
};

class wait_queue {
public:
    wait_queue() = default;
    wait_queue(const wait_queue&) = delete;
    wait_queue& operator=(const wait_queue&) = delete;
    ~wait_queue() {
        while (head_ != nullptr) unlink(*head_);
    }

    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    // Linked waiters that are not cancelled (woken ones included).
    std::size_t live() const noexcept { return size_ - n_cancelled_; }
    bool all_cancelled() const noexcept { return n_cancelled_ == size_; }
    waiter* front() const noexcept { return head_; }

    void push_back(waiter& w) noexcept {
        w.queue_ = this;
        w.prev_ = tail_;
        w.next_ = nullptr;
        if (tail_) {
            tail_->next_ = &w;
        } else {
            head_ = &w;
        }
        tail_ = &w;
        ++size_;
        if (w.cancelled()) ++n_cancelled_;
    }
    // Harmless if w is not linked here.
    void remove(waiter& w) noexcept {
        if (w.queue_ == this) unlink(w);
    }

    // asyncio's `for fut in waiters: if not fut.done(): fut.set_result(..)`:
    // wakes the first waiter not yet done, leaving it linked (its task
    // unlinks it). False if there was none.
    bool wake_first_pending() {
        for (waiter* w = head_; w != nullptr; w = w->next_) {
            if (!w->done()) {
                w->set_result();
                return true;
            }
        }
        return false;
    }
    // Wakes up to n waiters not yet done, in order; returns how many.
    std::size_t wake_pending(std::size_t n) {
        std::size_t woke = 0;
        for (waiter* w = head_; w != nullptr && woke < n; w = w->next_) {
            if (!w->done()) {
                w->set_result();
                ++woke;
            }
        }
        return woke;
    }
    // Queue._wakeup_next: pops waiters until one not yet done, wakes it.
    bool pop_and_wake_next() {
        while (head_ != nullptr) {
            waiter& w = *head_;
            unlink(w);
            if (!w.done()) {
                w.set_result();
                return true;
            }
        }
        return false;
    }
    // Queue.shutdown: pops every waiter, waking those not yet done.
    void pop_and_wake_all() {
        while (head_ != nullptr) {
            waiter& w = *head_;
            unlink(w);
            if (!w.done()) w.set_result();
        }
    }

    // LoopBoundMixin: the first wait binds the queue to its loop. Loops are
    // compared by address only: a new loop built where a destroyed one was
    // counts as the same (harmless, the old one can have no waiters).
    void bind(event_loop& loop, const char* what) {
        if (loop_ == nullptr) {
            loop_ = &loop;
        } else if (loop_ != &loop) [[unlikely]] {
            throw runtime_error(std::string(what) + " is bound to a different event loop");
        }
    }

private:
    friend class waiter;
    void unlink(waiter& w) noexcept {
        if (w.prev_) {
            w.prev_->next_ = w.next_;
        } else {
            head_ = w.next_;
        }
        if (w.next_) {
            w.next_->prev_ = w.prev_;
        } else {
            tail_ = w.prev_;
        }
        w.prev_ = w.next_ = nullptr;
        w.queue_ = nullptr;
        --size_;
        if (w.cancelled()) --n_cancelled_;
    }

    waiter* head_ = nullptr;
    waiter* tail_ = nullptr;
    std::size_t size_ = 0;
    std::size_t n_cancelled_ = 0;
    event_loop* loop_ = nullptr;
};

inline bool waiter::cancel(std::string msg) {
    if (!future_base::cancel(std::move(msg))) return false;
    if (queue_ != nullptr) ++queue_->n_cancelled_;
    return true;
}

// How a wait ended, from the waiting task's side.
struct wait_outcome {
    // Null: woken normally. Otherwise what to raise (a cancellation).
    std::exception_ptr error;
    // A wake-up had arrived (the waiter was set) when the error came: the
    // primitive must pass on what that wake-up granted.
    bool woken = false;
    // The waiter (set by park_in only), for cleanup after an error.
    intrusive_ptr<waiter> w;
};

// The one suspension primitive: parks the current task on a new waiter at
// the back of a wait_queue. Lives in an awaiter (so in the coroutine frame)
// from await_suspend to await_resume; unlinks its waiter when it dies.
class parking {
public:
    parking() = default;
    // Awaiters move before they are awaited, never while parked: a move
    // starts unparked.
    parking(parking&&) noexcept {}
    parking& operator=(const parking&) = delete;
    ~parking() {
        if (w_ && w_->linked()) q_->remove(*w_);
    }

    bool parked() const noexcept { return static_cast<bool>(w_); }
    waiter& get() const noexcept { return *w_; }

    // Call from await_suspend. Throws (without parking) outside a task.
    void suspend(wait_queue& q, std::coroutine_handle<> h, const char* what) {
        task_base* t = task_base::current();
        if (t == nullptr) [[unlikely]] {
            throw runtime_error(std::string(what) + " can only be awaited inside a task");
        }
        event_loop& loop = t->get_loop();
        q.bind(loop, what);
        auto w = intrusive_ptr<waiter>::adopt(new waiter(loop));
        t->wait_on(*w, h);  // may throw: nothing linked yet
        q.push_back(*w);
        q_ = &q;
        task_ = t;
        w_ = std::move(w);
    }

    // Call first thing in await_resume. If `unlink`, the waiter leaves its
    // queue (asyncio's `finally: self._waiters.remove(fut)`).
    wait_outcome resume(bool unlink = true) noexcept {
        if (unlink && w_->linked()) q_->remove(*w_);
        wait_outcome out;
        out.woken = w_->woken();
        try {
            task_->raise_throw_in();  // cancelled after the wake-up came
        } catch (...) {
            out.error = std::current_exception();
            return out;
        }
        if (w_->cancelled()) out.error = w_->cancel_error();
        return out;
    }

private:
    intrusive_ptr<waiter> w_;
    wait_queue* q_ = nullptr;
    task_base* task_ = nullptr;
};

// A plain wait on a queue, for coroutines that build on it (condition,
// queue): `wait_outcome o = co_await park_in(q, "name");` never throws for
// a cancellation, it reports it, so the caller can clean up first.
class park_in {
public:
    using pyco_awaitable_tag = void;
    park_in(wait_queue& q, const char* what, bool unlink = true) noexcept
        : q_(&q), what_(what), unlink_(unlink) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { p_.suspend(*q_, h, what_); }
    wait_outcome await_resume() noexcept {
        wait_outcome o = p_.resume(unlink_);
        o.w = intrusive_ptr<waiter>(&p_.get());
        return o;
    }

private:
    wait_queue* q_;
    const char* what_;
    bool unlink_;
    parking p_;
};

// The RAII form of acquire/release: `auto held = co_await x.scoped();`
// releases when `held` dies (or at held.release()).
template <class M>
class [[nodiscard]] scoped_release {
public:
    explicit scoped_release(M& m) noexcept : m_(&m) {}
    scoped_release(scoped_release&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }
    scoped_release& operator=(scoped_release&& o) noexcept {
        if (this != &o) {
            reset();
            m_ = o.m_;
            o.m_ = nullptr;
        }
        return *this;
    }
    ~scoped_release() { reset(); }
    // Releases now (once).
    void release() { reset(); }
    bool owns() const noexcept { return m_ != nullptr; }

private:
    void reset() {
        if (M* m = m_) {
            m_ = nullptr;
            m->release();
        }
    }
    M* m_;
};

// Wraps an acquire awaiter so that it gives a scoped_release.
template <class M, class A>
class [[nodiscard("co_await it, and keep the guard it gives")]] scoped_awaiter {
public:
    using pyco_awaitable_tag = void;
    scoped_awaiter(M& m, A a) noexcept : m_(&m), a_(std::move(a)) {}
    bool await_ready() { return a_.await_ready(); }
    auto await_suspend(std::coroutine_handle<> h) { return a_.await_suspend(h); }
    scoped_release<M> await_resume() {
        a_.await_resume();
        return scoped_release<M>(*m_);
    }

private:
    M* m_;
    A a_;
};

// An acquire awaiter whose result is dropped: `async with lock:` binds
// nothing (asyncio's __aenter__ returns None).
template <class A>
class [[nodiscard("co_await it")]] void_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit void_awaiter(A a) noexcept : a_(std::move(a)) {}
    bool await_ready() { return a_.await_ready(); }
    auto await_suspend(std::coroutine_handle<> h) { return a_.await_suspend(h); }
    void await_resume() { a_.await_resume(); }

private:
    A a_;
};

}  // namespace pyco::detail
