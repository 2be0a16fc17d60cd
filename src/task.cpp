#include <pyco/detail/task_base.hpp>

#include <cstdio>
#include <vector>

#include <pyco/detail/gather_base.hpp>

#include <pyco/unraisable.hpp>

#include "function_name.hpp"

namespace pyco::detail {

namespace {

thread_local task_base* tls_current_task = nullptr;

// A coroutine whose only job is to be resumed: foreign awaiters get its
// handle, and resuming it queues the task's step, so that the task still
// runs only from the loop. It starts suspended; each resume runs to the next
// co_await, whose await_suspend does the queueing (see make_resumer).
struct resumer {
    struct promise_type {
        resumer get_return_object() noexcept {
            return {std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        std::suspend_always final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> h;
};

}  // namespace

task_base::task_base(event_loop& loop, std::coroutine_handle<> root, coro_frame* root_frame)
    : future_base(loop),
      root_frame_(root_frame),
      root_(root),
      coro_loc_(root_frame->created_),
      resume_(root),
      id_(loop.next_task_id()) {
    add_ref();  // pending: the loop keeps it alive
    loop.live_tasks().push_back(*this);
    schedule_step();
}

task_base::~task_base() {
    if (root_) root_.destroy();
    if (resumer_) resumer_.destroy();
    unlink();
}

task_base* task_base::current() noexcept { return tls_current_task; }

std::string task_base::get_name() const {
    return name_ ? *name_ : "Task-" + std::to_string(id_);
}

bool task_base::cancel(std::string msg) {
    log_traceback_ = false;
    if (done()) return false;
    ++num_cancels_requested_;
    // The waited-on future's callback wakes us; it raises cancelled_error.
    // If it refuses, the walk calls keep_cancel.
    if (fut_waiter_) {
        cancel_walk::run(this, cancel_walk::kind::task, msg);
        return true;
    }
    keep_cancel(msg);
    return true;
}

void task_base::keep_cancel(const std::string& msg) {
    // A step is queued, or will be: it throws cancelled_error in.
    must_cancel_ = true;
    exception_ = make_cancel(msg);  // pending: kept for the next step
}

namespace {

// One level of a cancel_walk still to finish.
struct walk_level {
    future_base* node;
    cancel_walk::kind kind;
    bool took = false;       // a child's cancel() returned true
    std::size_t next = 0;    // the next child to visit
};

struct walk_state {
    std::vector<walk_level> levels;  // kept between walks: no allocation once warm
    bool running = false;
};

thread_local walk_state tls_walk;

}  // namespace

bool cancel_walk::run(future_base* node, kind k, const std::string& msg) {
    walk_state& w = tls_walk;
    if (w.running) {
        // Called by the running walk on a child: that walk goes on from here.
        w.levels.push_back({node, k});
        return false;  // not read: the level answers its parent when it finishes
    }
    struct guard {
        walk_state& w;
        ~guard() {
            w.running = false;
            w.levels.clear();
            if (w.levels.capacity() > 1024) w.levels.shrink_to_fit();  // a one-off deep walk
        }
    } g{w};
    w.running = true;
    w.levels.push_back({node, k});
    bool answer = false;
    while (!w.levels.empty()) {
        walk_level& top = w.levels.back();
        future_base* child = nullptr;
        if (top.kind == kind::task) {
            if (top.next++ == 0) child = static_cast<task_base*>(top.node)->fut_waiter_.get();
        } else {
            auto& children = static_cast<gather_base*>(top.node)->children_;
            if (top.next < children.size()) child = children[top.next++];
        }
        if (child != nullptr) {
            const std::size_t depth = w.levels.size();
            const bool took = child->cancel(msg);
            if (w.levels.size() == depth) w.levels.back().took |= took;  // else: a level of its own
            continue;
        }
        // Every child visited: finish the level, answer its parent.
        bool took = top.took;
        if (top.kind == kind::task) {
            if (!took) static_cast<task_base*>(top.node)->keep_cancel(msg);
            took = true;  // a pending task always takes a cancel
        } else if (took) {
            // Any child that took it makes the gather end cancelled, even
            // with return_exceptions (bpo-32684).
            static_cast<gather_base*>(top.node)->cancel_requested_ = true;
        }
        w.levels.pop_back();
        if (w.levels.empty()) {
            answer = took;
        } else {
            w.levels.back().took |= took;
        }
    }
    return answer;
}

int task_base::uncancel() noexcept {
    if (num_cancels_requested_ > 0) {
        --num_cancels_requested_;
        // CPython >= 3.12.3 (gh-116720): the last uncancel() also withdraws
        // a cancellation not yet delivered.
        if (num_cancels_requested_ == 0 && must_cancel_) {
            must_cancel_ = false;
            exception_ = nullptr;
        }
    }
    return num_cancels_requested_;
}

void task_base::schedule_step() {
    if (step_scheduled_) return;
    step_scheduled_ = true;
    loop_->schedule({&step_entry, this, nullptr});
}

void task_base::step_entry(void* task, void*, bool run) {
    // No reference of its own: a pending task keeps itself alive, and a
    // closing loop drops queued steps (run = false) after abandoning tasks.
    if (run) static_cast<task_base*>(task)->step();
}

task_base* task_base::stepped_by(void (*fn)(void*, void*, bool), void* a) noexcept {
    return fn == &step_entry || fn == &wakeup_entry ? static_cast<task_base*>(a) : nullptr;
}

void task_base::wakeup_entry(void* task, void* fut, bool run) {
    auto t = intrusive_ptr<task_base>::adopt(static_cast<task_base*>(task));
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (run) t->step();
}

void task_base::wait_on(future_base& f, std::coroutine_handle<> h) {
    resume_ = h;
    fut_waiter_ = intrusive_ptr<future_base>(&f);
    add_ref();  // the callback's
    try {
        f.add_callback(&wakeup_entry, this);
    } catch (...) {
        release();
        fut_waiter_ = {};
        throw;
    }
    // CPython's __step: a cancel() made while the task ran (it cancelled
    // itself, or a callback it called did) applies to the future it now
    // waits on; otherwise it would wait for that future first, maybe forever.
    if (must_cancel_) [[unlikely]] {
        std::string msg;
        if (exception_) {
            try {
                std::rethrow_exception(exception_);
            } catch (const cancelled_error& e) {
                msg = e.what();
            } catch (...) {
            }
        }
        if (fut_waiter_->cancel(std::move(msg))) {
            must_cancel_ = false;
            exception_ = nullptr;  // the future's cancelled_error carries it now
        }
    }
}

void task_base::yield_once(std::coroutine_handle<> h) {
    resume_ = h;
    schedule_step();
}

void task_base::wake_foreign() {
    resume_ = foreign_resume_;
    schedule_step();
}

std::coroutine_handle<> task_base::make_resumer() {
    // Resumed on the thread running this task's loop: queue the step there
    // and then (one thread-local read more than a bare schedule_step). On
    // any other thread (a user's thread-pool awaitable), or on the loop's
    // thread while the loop is not running: post to the loop's inbox, which
    // wakes it, as call_soon_threadsafe does. That thread touches only this
    // frame and the proxy, never the task or a reference count, and not
    // even the frame once it has posted: the frame is already suspended
    // when await_suspend runs (a void await_suspend, so the compiler adds
    // no store after it), and the loop may destroy it as soon as the step
    // it posted has run. The task itself cannot go before the posted step
    // runs: a pending task holds its own reference, and it stays pending
    // until that step; a loop closing first drops the post unrun.
    struct wake {
        task_base* task;
        event_loop* loop;
        loop_proxy* proxy;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) const {
            task_base* t = task;
            if (running_loop() == loop) [[likely]] {
                t->wake_foreign();
                return;
            }
            loop_proxy* p = proxy;
            p->post([t] { t->wake_foreign(); });  // false once closed: the task is gone
        }
        void await_resume() const noexcept {}
    };
    struct make {
        static resumer body(wake w) {
            for (;;) co_await w;
        }
    };
    resumer_ = make::body(wake{this, loop_.get(), loop_->proxy().get()}).h;
    return resumer_;
}

void task_base::rethrow_throw_in() {
    std::exception_ptr e = std::move(throw_in_);
    throw_in_ = nullptr;
    std::rethrow_exception(std::move(e));
}

void task_base::step() {
    step_scheduled_ = false;
    if (done() || !root_) return;
    if (must_cancel_) {
        must_cancel_ = false;
        throw_in_ = exception_ ? std::move(exception_) : std::make_exception_ptr(cancelled_error());
        exception_ = nullptr;
    }
    fut_waiter_ = {};
    if (!stepped_ && throw_in_) {
        // Cancelled before its first step: the body never runs.
        root_frame_->exception_ = std::move(throw_in_);
        throw_in_ = nullptr;
        complete();
        return;
    }
    stepped_ = true;
    task_base* previous = tls_current_task;
    tls_current_task = this;
    intrusive_ptr<task_base> keep(this);  // complete() drops the self-reference
    resume_.resume();
    tls_current_task = previous;
    if (root_.done()) complete();
}

void task_base::complete() {
    std::exception_ptr e = std::move(root_frame_->exception_);
    root_frame_->exception_ = nullptr;
    if (e) {
        if (exception_is<cancelled_error>(e)) {
            exception_ = e;  // re-raised as is by result()
            state_ = fut_state::cancelled;
            finish();
        } else {
            exception_ = e;
            state_ = fut_state::finished;
            log_traceback_ = true;
            finish();
        }
    } else if (must_cancel_) {
        // Cancelled right before its coroutine returned: still cancelled
        // (exception_ holds the requested cancellation's error, if any).
        must_cancel_ = false;
        state_ = fut_state::cancelled;
        finish();
    } else {
        take_result();
    }
    root_.destroy();
    root_ = nullptr;
    root_frame_ = nullptr;
    unlink();
    release();  // the self-reference of a pending task
}

void task_base::abandon() noexcept {
    if (log_destroy_pending_) {
        try {
            loop_->call_exception_handler({"Task was destroyed but it is pending!", nullptr, describe(), {}});
        } catch (...) {
        }
    }
    intrusive_ptr<task_base> keep(this);
    fut_waiter_ = {};
    if (root_) {
        root_.destroy();  // destructors of its locals run; no code does
        root_ = nullptr;
        root_frame_ = nullptr;
    }
    unlink();
    release();  // the self-reference
}

void abandon_task(list_link* link) noexcept {
    task_base::from_link(link)->abandon();
}

std::vector<frame_info> task_base::get_stack() const {
    std::vector<frame_info> out;
    if (done() || !root_frame_) return out;
    for (const coro_frame* f = root_frame_; f != nullptr; f = f->child_) {
        frame_info fi;
        fi.function = short_function_name(f->created_.function_name());
        fi.file = f->created_.file_name();
        fi.line = f->waited_somewhere_ ? f->waiting_at_.line() : f->created_.line();
        out.push_back(std::move(fi));
    }
    return out;
}

std::string task_base::describe() const {
    std::string s = "<Task ";
    s += done() ? (cancelled() ? "cancelled" : "finished") : "pending";
    s += " name='" + get_name() + "'";
    {
        s += " coro=<" + short_function_name(coro_loc_.function_name()) + "()";
        // As CPython's repr: where the task's own coroutine is (get_stack()
        // gives the whole chain).
        if (!done() && root_frame_ && root_frame_->waited_somewhere_) {
            s += " running at " + std::string(root_frame_->waiting_at_.file_name()) + ":" +
                 std::to_string(root_frame_->waiting_at_.line());
        }
        s += ">";
    }
    if (state_ == fut_state::finished && exception_) s += " exception=" + describe_exception(exception_);
    return s + ">";
}

}  // namespace pyco::detail
