// pyco/task_group.hpp — asyncio.TaskGroup: pyco::task_group.
//
// The scoped form (no lambda; `async with asyncio.TaskGroup() as tg:`):
//   pyco::task_group tg;
//   tg.enter();
//   std::exception_ptr err;
//   try {
//       tg.create_task(fetch(a));
//       tg.create_task(fetch(b), "fetch-b");
//       co_await something_else();
//   } catch (...) {
//       err = std::current_exception();  // (C++ cannot co_await in a handler)
//   }
//   co_await tg.exit(err);  // waits for every task; raises as __aexit__ does
// A body with no co_await cannot be interrupted, so it needs no try:
//   tg.enter(); tg.create_task(a()); tg.create_task(b()); co_await tg.exit();
//
// The async_with form, with the body named first (GCC 12: see async_with.hpp):
//   auto body = [&](pyco::task_group& tg) -> pyco::coroutine<void> { ... };
//   co_await pyco::async_with(g, body);
//
// Leaving the scope without awaiting exit() — forgetting it, or letting an
// exception (say, the cancelled_error a failing child sends the parent) out
// of the body without the try above — loses __aexit__'s semantics: nobody
// waits for the children, nor turns the errors into an exception_group, nor
// uncancels the parent. The destructor notices (it runs inside the parent
// task: a closing loop destroying an abandoned frame does not count),
// cancels the children that are left and reports it through the loop's
// exception handler: "TaskGroup <...> was destroyed without its exit()
// being awaited ...".
//
// A port of CPython 3.12's taskgroups.py. aexit() waits until every task of
// the group is done, then raises, in this order of priority:
//   - the first keyboard_interrupt, of a task or of the body, as it is
//     (CPython's _base_error, for KeyboardInterrupt and SystemExit; pyco has
//     no SystemExit);
//   - "unhandled errors in a TaskGroup" with the exceptions of the tasks
//     that failed, in the order they finished, and last the body's own
//     exception (unless that is a cancelled_error): an exception_group when
//     all are Exceptions (std::exceptions), else a base_exception_group,
//     which `catch (const std::exception&)` does not catch (CPython's
//     BaseExceptionGroup(...) chooses the same way);
//   - the cancelled_error that cancelled the parent task from outside;
//   - nothing, when the body ended normally, no task failed and nobody
//     cancelled the parent from outside.
//
// Cancellation: the first task to fail (with anything but cancelled_error)
// cancels every other task of the group and the parent task — the one that
// entered the group — so its body is interrupted at its current co_await;
// aexit() then uncancel()s the parent, so that this internal cancellation
// does not leak out of the group. A cancellation of the parent from
// outside (while in the body or while aexit waits) cancels the children
// too and propagates as cancelled_error once they are done, unless some task
// failed: then the error group wins, and the parent is re-cancelled so
// the outer cancellation is not lost. Tasks cancelled on their own are not
// errors. The body's exception likewise cancels the children.
// Once aborting, create_task() refuses ("is shutting down"), as it does
// before aenter() ("has not been entered") and after aexit() ("is finished").
// (CPython's Task also re-raises KeyboardInterrupt out of the event loop at
// once; a pyco task keeps it as its exception, so here it only reaches the
// group, which raises it unwrapped after the other tasks are done.)
//
// The group cannot be copied or moved (its tasks' done callbacks refer to
// it); if it is destroyed before aexit() finished because its task was
// abandoned (a closing loop abandons the children too), it detaches from
// its tasks.
//
// Thread rule: loop thread only; aenter/aexit inside the parent task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/intrusive.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/task.hpp>

namespace pyco {

namespace detail {

// coro.close() on a coroutine that never ran: its frame goes without the
// debug-mode "was never awaited" warning (it was refused, not forgotten).
template <class T>
void close_unstarted(coroutine<T>& coro) noexcept {
    if (!coro) return;
    try {
        coroutine_access::take(coro).destroy();
    } catch (...) {
        // Already started: its destructor frees it, without a warning.
    }
}

}  // namespace detail

class task_group {
public:
    task_group() = default;
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group();

    // TaskGroup.create_task(coro, name=): a task on the group's loop, tracked
    // by the group. On refusal the coroutine is closed, as CPython does.
    template <class T>
    task<T> create_task(coroutine<T> coro, std::string name = {}) {
        if (const char* why = refusal()) {
            detail::close_unstarted(coro);
            throw runtime_error("TaskGroup " + describe() + why);
        }
        task<T> t = pyco::create_task(*loop_, std::move(coro), std::move(name));
        track(t);
        return t;
    }

    // "<TaskGroup tasks=2 errors=1 cancelling>", "<TaskGroup entered>"
    std::string describe() const;

    // --- the scoped form (see the top of this file) ---
    // `async with`'s entry: aenter().
    void enter() { aenter(); }
    // `async with`'s exit: aexit(body_error), then body_error again — what
    // async with does when __aexit__ does not suppress, which this one never
    // does. With the body's exception (or none), it raises what the async
    // with statement would.
    coroutine<void> exit(std::exception_ptr body_error = nullptr);

    // --- the async context manager protocol (pyco::async_with) ---
    // The body receives this as `pyco::task_group&`.
    std::reference_wrapper<task_group> aenter();
    coroutine<void> aexit(std::exception_ptr e);

private:
    // One task of the group; owned by the group's list while linked. Its
    // done callback refers to it; if the group goes first, the callback
    // (already queued) owns and frees it.
    struct member : detail::list_link {
        task_group* group;
        any_task task;
        std::uint32_t callback_id = 0;
    };

    const char* refusal() const noexcept;
    void report_not_exited() noexcept;
    void track(const any_task& t);
    static void on_task_done_entry(void* member, void* fut, bool run);
    void on_task_done(member* m);
    void abort();

    event_loop* loop_ = nullptr;
    any_task parent_;
    detail::list_link tasks_;  // of member
    std::size_t size_ = 0;
    std::vector<std::exception_ptr> errors_;
    std::exception_ptr base_error_;  // the first keyboard_interrupt
    future<void> on_completed_;  // empty: none (CPython's None)
    bool entered_ = false;
    bool exiting_ = false;
    bool aborting_ = false;
    bool parent_cancel_requested_ = false;
};

}  // namespace pyco
