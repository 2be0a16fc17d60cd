// pyco/detail/task_base.hpp — the untyped half of a task, and coroutine frames.
//
// A task drives one coroutine chain: its root coroutine and whatever that
// awaits, down to the leaf. The chain runs only inside step(), which the
// loop calls; step() resumes `resume_`, the suspension point of the leaf.
//
// Protocol (asyncio's Task, which it mirrors). Either
//   - a step is queued (step_scheduled_), and nothing else wakes the task; or
//   - the task waits on a future (fut_waiter_), whose done callback will
//     queue exactly one wakeup; or
//   - the task waits in a foreign awaiter, which will resume `resumer_`
//     (from any thread), which queues a step that resumes `foreign_resume_`;
//     or
//   - the task is done.
// foreign_resume_, not resume_: a foreign awaiter may run code inside the
// task before it wakes it (a pyco coroutine it wraps, a coroutine type of
// the user's own), which suspends the task at points of its own and so
// moves resume_; only the coroutine that awaited the foreign awaiter may be
// resumed by its wake-up. That code may itself wait in a foreign awaiter:
// each foreign await keeps the foreign_resume_ it shadows and puts it back
// when it resumes (end_foreign), a stack held in the awaiters, which a task
// (one chain) resumes last-in first-out.
// cancel() never resumes anything itself: it cancels fut_waiter_ (whose
// callback then wakes the task) or sets must_cancel_, which the next step
// turns into cancelled_error, raised by the awaiter that resumes (every
// pyco awaiter calls raise_throw_in() first). Cancelling fut_waiter_ goes
// through a cancel_walk (detail/cancel_walk.hpp), never by recursion: it
// may be the top of a chain of tasks and gathers of any depth.
//
// Lifetime: a pending task holds a reference to itself, dropped when it
// finishes, so the loop keeps a task alive although the user holds no
// handle. A loop closed with tasks still pending abandons them: it reports
// "Task was destroyed but it is pending!" and destroys their frames.
//
// Thread rule: loop thread only, with one exception. The resumer handle a
// foreign awaiter holds may be resumed from any thread (a user's
// thread-pool awaitable does so from a worker): on the loop's running
// thread it queues the step at once; anywhere else it posts the step
// through the loop's thread-safe inbox, which wakes the loop, touching
// neither the task nor any reference count on the way. As with any handle
// an awaiter keeps, the loop must not be closed before that resume: a task
// cancelled while it waits there still waits for it (pyco::run does).
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include <pyco/detail/cancel_walk.hpp>
#include <pyco/detail/future_base.hpp>
#include <pyco/detail/intrusive.hpp>

namespace pyco {

// One entry of a task's stack (Task.get_stack): a coroutine and where it is.
struct frame_info {
    std::string function;  // as CPython names it: "ns::f", "C::meth", "f()::<lambda>"
    std::string file;      // as the compiler was given it
    unsigned line = 0;  // the co_await it waits at, else its definition
};

namespace detail {

// The promise base of every pyco coroutine: links for awaiting and for
// stack dumps, and what the coroutine is for messages.
struct coro_frame {
    std::coroutine_handle<> continuation_;  // who awaits this one; null: a task
    coro_frame* child_ = nullptr;           // the coroutine this one awaits
    // The handle in the pyco::coroutine object that owns this frame (it
    // follows the object's moves); null for a task's root and for frames
    // that are not pyco::coroutine's (async generators). destroy_frame
    // uses it to take a frame from its owner before destroying it.
    std::coroutine_handle<>* owner_ = nullptr;
    std::exception_ptr exception_;
    std::source_location created_;       // the coroutine function
    std::source_location waiting_at_{};  // its latest co_await
    bool started_ = false;               // awaited, or handed to a task
    bool waited_somewhere_ = false;      // waiting_at_ is meaningful
};

// Destroys a coroutine frame and, first, the chain of pyco::coroutine
// frames it awaits (through child_), from the bottom up, in a loop: a
// chain a million deep suspended in a task the loop abandons (or whose
// coroutine object is dropped) must not recurse once per level, as the
// frames' own destructors would (each destroys the coroutine object it
// awaits). Bottom-up is the order that recursion gives too: a level's
// locals are destroyed after its child frame is gone. Each owner's handle
// is nulled before its frame goes, so the parent's destruction finds
// nothing left to destroy.
void destroy_frame(std::coroutine_handle<> h, coro_frame* f) noexcept;

// A task is a list_link (first base after future_base) in the loop's live
// tasks, so no back-pointer is needed to find the task from its link.
class task_base : public future_base, public list_link {
public:
    task_base(event_loop& loop, std::coroutine_handle<> root, coro_frame* root_frame);

    bool cancel(std::string msg = {}) override;
    int cancelling() const noexcept { return num_cancels_requested_; }
    int uncancel() noexcept;

    std::string get_name() const;
    void set_name(std::string name) { name_ = std::make_unique<std::string>(std::move(name)); }
    std::vector<frame_info> get_stack() const;
    std::string describe() const override;

    // --- for awaiters ---
    // The task whose step is running on this thread, or null.
    static task_base* current() noexcept;
    // Park the task on `f`: resume at `h` when f is done.
    void wait_on(future_base& f, std::coroutine_handle<> h);
    // Yield to the loop once (sleep(0)): resume at `h` next iteration.
    void yield_once(std::coroutine_handle<> h);
    // Wait in a foreign awaiter, to go on at `h`; returns the handle the
    // awaiter should resume. `shadowed` keeps what end_foreign restores when
    // the await is over (resumed, or await_suspend threw).
    std::coroutine_handle<> wait_foreign(std::coroutine_handle<> h, std::coroutine_handle<>& shadowed) {
        shadowed = foreign_resume_;
        foreign_resume_ = h;
        return resumer_ ? resumer_ : make_resumer();
    }
    void end_foreign(std::coroutine_handle<> shadowed) noexcept { foreign_resume_ = shadowed; }
    // Throw what cancel() (or a foreign wake-up) left for this point.
    void raise_throw_in() {
        if (throw_in_) [[unlikely]] rethrow_throw_in();
    }

    // The loop closes with this task pending.
    void abandon() noexcept;
    // CPython's _log_destroy_pending: run_until_complete(coroutine) clears
    // it for the task it makes, whose caller already got "Event loop stopped
    // before Future completed." if the loop stopped early.
    void set_log_destroy_pending(bool on) noexcept { log_destroy_pending_ = on; }
    static task_base* from_link(list_link* l) noexcept { return static_cast<task_base*>(l); }

    // The task a ready-queue entry steps, if it is a task step (the debug
    // mode's slow-step report and stall detector name it); else null.
    static task_base* stepped_by(void (*fn)(void*, void*, bool), void* a) noexcept;

protected:
    ~task_base() override;
    const char* kind() const noexcept override { return "Task"; }
    // The root coroutine finished: take its result (set_result on self).
    virtual void take_result() = 0;
    coro_frame* root_frame_;  // inside root_'s frame: null once it is gone
    std::coroutine_handle<> root_;
    std::source_location coro_loc_;  // outlives the frame, for describe()

private:
    friend struct cancel_walk;
    // fut_waiter_ refused the cancel: the next step raises it.
    void keep_cancel(const std::string& msg);
    static void step_entry(void* task, void*, bool run);
    static void wakeup_entry(void* task, void* fut, bool run);
    void schedule_step();
    void step();
    void complete();
    [[noreturn]] void rethrow_throw_in();
    std::coroutine_handle<> make_resumer();
    void wake_foreign();  // the resumer was resumed: step into foreign_resume_

    std::coroutine_handle<> resume_;
    std::coroutine_handle<> resumer_;  // foreign awaiters wake us through it
    std::coroutine_handle<> foreign_resume_;  // the innermost foreign await's coroutine
    intrusive_ptr<future_base> fut_waiter_;
    std::exception_ptr throw_in_;
    std::unique_ptr<std::string> name_;
    std::uint64_t id_;
    int num_cancels_requested_ = 0;
    bool must_cancel_ = false;
    bool step_scheduled_ = false;
    bool stepped_ = false;  // the body has been resumed at least once
    bool log_destroy_pending_ = true;
};

}  // namespace detail
}  // namespace pyco
