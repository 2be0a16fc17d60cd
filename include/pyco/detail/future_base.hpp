// pyco/detail/future_base.hpp — the untyped half of a future.
//
// States: pending -> finished (a result or an exception) or -> cancelled.
// A future leaves pending once; every later set_* is invalid_state_error
// ("invalid state", the message of CPython's C Future).
//
// Done callbacks never run inside set_result/set_exception/cancel: on
// completion each is queued on the loop (asyncio's call_soon), in the order
// they were added. A queued callback entry owns one reference to the future.
//
// Layout: a future is on every task's hot path and there may be millions,
// so the rarely used parts stay out of line: a cancellation's message lives
// in exception_ (unused while cancelled or pending) as the cancelled_error
// to raise, and callbacks beyond the first in a separate vector.
//
// A future whose exception nobody retrieved (result() or exception()) says
// so when it dies, through the loop's exception handler if that loop is
// running, else pyco's default handler.
//
// A future may outlive its loop's close() and even the loop itself: it
// holds the loop's anchor (event_loop.hpp), not the loop. Completing it
// then changes its state and, if it has callbacks, frees them and raises
// runtime_error("Event loop is closed"), as CPython's call_soon does;
// without callbacks it is no error (CPython again). Adding a callback to a
// done future of a closed loop raises the same. get_loop() needs the loop
// to exist.
//
// Thread rule: loop thread only.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pyco/detail/intrusive.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace pyco::detail {

enum class fut_state : std::uint8_t { pending, cancelled, finished };

// A callback on completion. `fn(ctx, fut, run)`: run it (run = true) or only
// free ctx (run = false: removed, or the loop closed first). `fut` is a
// future_base* whose reference the callee adopts.
struct done_callback {
    void (*fn)(void* ctx, void* fut, bool run) = nullptr;
    void* ctx = nullptr;
    std::uint32_t id = 0;
};

// A future's hold on its loop: `->` reaches the loop, which the caller
// knows to exist (it runs, or it is the running loop's own machinery).
class loop_ref {
public:
    explicit loop_ref(event_loop& loop) noexcept : a_(loop.anchor()) { a_->add_ref(); }
    loop_ref(const loop_ref&) = delete;
    loop_ref& operator=(const loop_ref&) = delete;
    ~loop_ref() { a_->release(); }
    event_loop* operator->() const noexcept { return a_->loop; }
    // The loop, or null once it is destroyed.
    event_loop* get() const noexcept { return a_->loop; }
    bool closed() const noexcept { return a_->closed; }

private:
    loop_anchor* a_;
};

class future_base : public refcounted {
public:
    explicit future_base(event_loop& loop) noexcept : loop_(loop) {}

    event_loop& get_loop() const noexcept { return *loop_.get(); }
    // The loop, or null once it is destroyed.
    event_loop* loop_if_alive() const noexcept { return loop_.get(); }
    bool done() const noexcept { return state_ != fut_state::pending; }
    bool cancelled() const noexcept { return state_ == fut_state::cancelled; }

    // Future.cancel(msg): false if already done.
    virtual bool cancel(std::string msg = {});
    void set_exception(std::exception_ptr e);
    // Future.exception(): null if it has a result.
    std::exception_ptr exception();
    // Raises what result() would raise, if anything.
    void raise_if_failed();

    std::uint32_t add_callback(void (*fn)(void*, void*, bool), void* ctx);
    std::size_t remove_callback(std::uint32_t id);

    // "<Future pending>", "<Task finished name='Task-1' coro=<main()> ...>"
    virtual std::string describe() const;

    // A done future whose exception nobody looked at; cleared by reading it.
    bool log_traceback() const noexcept { return log_traceback_; }
    void mark_retrieved() noexcept { log_traceback_ = false; }

protected:
    ~future_base() override;
    // Reports a never-retrieved exception while the object is still whole.
    void destroy() noexcept override;
    // pending -> finished/cancelled; queues the callbacks (runtime_error,
    // callbacks freed, if the loop is closed).
    void finish();
    void check_pending() const;
    // Frees every callback without running it.
    void drop_callbacks() noexcept;
    [[noreturn]] void raise_cancelled() const;
    static std::exception_ptr make_cancel(std::string msg);
    const char* state_name() const noexcept;
    virtual const char* kind() const noexcept { return "Future"; }

    loop_ref loop_;
    // finished: the exception, if any. cancelled: the cancelled_error to
    // raise (null: a plain one). pending (tasks): a requested cancellation's.
    std::exception_ptr exception_;
    done_callback first_cb_;
    std::unique_ptr<std::vector<done_callback>> more_cbs_;
    std::uint32_t next_cb_id_ = 0;
    fut_state state_ = fut_state::pending;
    bool log_traceback_ = false;
};

// The typed result: with_result<T, future_base> is a future's state,
// with_result<T, task_base> a task's.
template <class T, class Base>
class with_result : public Base {
public:
    using Base::Base;
    template <class U>
    void set_result(U&& v) {
        this->check_pending();
        value_.emplace(std::forward<U>(v));
        this->finish();
    }
    T& result() {
        this->raise_if_failed();
        return *value_;
    }

private:
    std::optional<T> value_;
};

template <class Base>
class with_result<void, Base> : public Base {
public:
    using Base::Base;
    void set_result() {
        this->check_pending();
        this->finish();
    }
    void result() { this->raise_if_failed(); }
};

}  // namespace pyco::detail
