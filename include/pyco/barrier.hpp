// pyco/barrier.hpp — asyncio.Barrier: pyco::barrier (its error,
// broken_barrier_error, is in errors.hpp).
//
//   pyco::barrier b(3);
//   std::size_t i = co_await b.wait();   // 0 .. parties-1, unique per trip
//   co_await b.reset();  co_await b.abort();
//   b.parties(); b.n_waiting(); b.broken();
//
// States (CPython's): filling -> draining (the last party arrived: all are
// released) -> filling (the last one left); reset() -> resetting (waiters
// get broken_barrier_error) -> filling; abort() -> broken (for good, until
// reset()). A task that arrives while the barrier drains or resets waits
// for it to fill again.
//
// Built on pyco::condition (as asyncio's is), so the order in which parties
// resume is the condition's: FIFO.
//
// Cancel safety: a task cancelled in wait() leaves the barrier (n_waiting
// drops) and raises cancelled_error; the others keep waiting for a full
// count (CPython's test_filling_tasks_cancel_one). Cancelled while the
// barrier drains, it still counts as passed.
//
// Errors: barrier(parties < 1) raises value_error("parties must be >= 1");
// wait() on a broken barrier raises broken_barrier_error("Barrier aborted"),
// a waiter released by abort() or reset() gets ("Abort or reset of
// barrier").
//
// Thread rule: loop thread only.
#pragma once

#include <cstddef>
#include <exception>
#include <string>

#include <pyco/condition.hpp>
#include <pyco/coroutine.hpp>
#include <pyco/errors.hpp>

namespace pyco {

// asyncio.BrokenBarrierError (a RuntimeError in Python, so here too).
class barrier {
public:
    enum class state { filling, draining, resetting, broken };

    explicit barrier(std::size_t parties) : parties_(parties) {
        if (parties < 1) throw value_error("parties must be >= 1");
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;

    // await Barrier.wait(): the index of this party in this trip.
    coroutine<std::size_t> wait();
    // await Barrier.reset(): waiters get broken_barrier_error; back to filling.
    coroutine<void> reset();
    // await Barrier.abort(): broken; waiters and later wait()s raise.
    coroutine<void> abort();

    // async with barrier as i: (pyco::async_with)
    coroutine<std::size_t> aenter() { return wait(); }
    void aexit(std::exception_ptr) noexcept {}

    std::size_t parties() const noexcept { return parties_; }
    // Tasks waiting for the barrier to fill (0 unless filling).
    std::size_t n_waiting() const noexcept { return state_ == state::filling ? count_ : 0; }
    bool broken() const noexcept { return state_ == state::broken; }
    state get_state() const noexcept { return state_; }

private:
    coroutine<void> block();
    coroutine<void> wait_released();
    void release_all() {
        state_ = state::draining;
        cond_.notify_all();
    }
    void exit_one() {
        if (count_ == 0) {
            if (state_ == state::resetting || state_ == state::draining) state_ = state::filling;
            cond_.notify_all();
        }
    }

    condition cond_;
    std::size_t parties_;
    std::size_t count_ = 0;
    state state_ = state::filling;
};

// Blocks while the barrier drains or resets; raises if it is broken.
inline coroutine<void> barrier::block() {
    auto ready = [this] { return state_ != state::draining && state_ != state::resetting; };
    co_await cond_.wait_for(ready);
    if (state_ == state::broken) throw broken_barrier_error("Barrier aborted");
}

// Waits in the barrier until released; raises if reset or aborted meanwhile.
inline coroutine<void> barrier::wait_released() {
    auto released = [this] { return state_ != state::filling; };
    co_await cond_.wait_for(released);
    if (state_ == state::broken || state_ == state::resetting) {
        throw broken_barrier_error("Abort or reset of barrier");
    }
}

inline coroutine<std::size_t> barrier::wait() {
    co_await cond_.acquire();
    std::exception_ptr err;
    std::size_t index = 0;
    try {
        co_await block();
        index = count_++;
        try {
            if (index + 1 == parties_) {
                release_all();
            } else {
                co_await wait_released();
            }
        } catch (...) {
            err = std::current_exception();
        }
        --count_;
        exit_one();
    } catch (...) {
        err = std::current_exception();
    }
    cond_.release();  // the condition re-took the lock, also on errors
    if (err) std::rethrow_exception(err);
    co_return index;
}

inline coroutine<void> barrier::reset() {
    co_await cond_.acquire();
    if (count_ > 0) {
        state_ = state::resetting;
    } else {
        state_ = state::filling;
    }
    cond_.notify_all();
    cond_.release();
}

inline coroutine<void> barrier::abort() {
    co_await cond_.acquire();
    state_ = state::broken;
    cond_.notify_all();
    cond_.release();
}

}  // namespace pyco
