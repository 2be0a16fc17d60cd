#include <pyco/task_group.hpp>

#include <exception>
#include <string>

#include <pyco/errors.hpp>

namespace pyco {

namespace {

// CPython's TaskGroup._is_base_error: KeyboardInterrupt (or SystemExit).
bool is_base_error(const std::exception_ptr& e) { return exception_is<keyboard_interrupt>(e); }

}  // namespace

task_group::~task_group() {
    // Entered, never exited, and destroyed by the parent itself: its scope
    // was left without awaiting exit() (see the header).
    if (entered_ && !exiting_ && parent_ && detail::task_base::current() == parent_.base()) {
        report_not_exited();
    }
    // Reached with tasks only if aexit() never finished (the parent's frame
    // was destroyed, as a closing loop does to a pending task, or the scope
    // was left without exit()).
    while (tasks_.linked()) {
        auto* m = static_cast<member*>(tasks_.next);
        m->unlink();
        if (m->task.base()->remove_callback(m->callback_id) == 1) {
            delete m;  // the callback was still registered: nobody else has m
        } else {
            m->group = nullptr;  // the callback is queued: it frees m
        }
    }
}

void task_group::report_not_exited() noexcept {
    const bool unwinding = std::uncaught_exceptions() > 0;
    try {
        std::string what = "TaskGroup " + describe() + " was destroyed without its exit() being awaited";
        what += unwinding ? " (an exception left its scope: catch it and pass it to exit())"
                          : " (co_await tg.exit() ends its scope)";
        // Nobody will wait for them now: stop them, as an exception in the
        // body would have.
        abort();
        if (size_ > 0) what += "; its tasks were cancelled";
        loop_->call_exception_handler(
            {std::move(what), errors_.empty() ? nullptr : errors_.front(), parent_.describe(), {}});
    } catch (...) {
    }
}

coroutine<void> task_group::exit(std::exception_ptr body_error) {
    co_await aexit(body_error);
    if (body_error) std::rethrow_exception(body_error);
}

std::string task_group::describe() const {
    // CPython's TaskGroup.__repr__.
    std::string s = "<TaskGroup";
    if (size_ > 0) s += " tasks=" + std::to_string(size_);
    if (!errors_.empty()) s += " errors=" + std::to_string(errors_.size());
    if (aborting_) {
        s += " cancelling";
    } else if (entered_) {
        s += " entered";
    }
    return s + ">";
}

std::reference_wrapper<task_group> task_group::aenter() {
    if (entered_) throw runtime_error("TaskGroup " + describe() + " has already been entered");
    if (loop_ == nullptr) loop_ = &get_running_loop();
    parent_ = current_task();
    if (!parent_) throw runtime_error("TaskGroup " + describe() + " cannot determine the parent task");
    entered_ = true;
    return *this;
}

const char* task_group::refusal() const noexcept {
    if (!entered_) return " has not been entered";
    if (exiting_ && size_ == 0) return " is finished";
    if (aborting_) return " is shutting down";
    return nullptr;
}

void task_group::track(const any_task& t) {
    auto* m = new member;
    m->group = this;
    m->task = t;
    tasks_.push_back(*m);
    ++size_;
    // Always through the loop, even for a task already done, so a failure
    // never cancels the parent from inside create_task().
    m->callback_id = t.base()->add_callback(&on_task_done_entry, m);
}

void task_group::on_task_done_entry(void* ctx, void* fut, bool run) {
    if (fut == nullptr) return;  // removed by ~task_group, which frees the member
    auto keep = detail::intrusive_ptr<detail::future_base>::adopt(static_cast<detail::future_base*>(fut));
    auto* m = static_cast<member*>(ctx);
    if (m->group == nullptr) {  // the group is gone
        delete m;
        return;
    }
    if (!run) {  // the loop closes with this queued: the group forgets the task
        --m->group->size_;
        m->unlink();
        delete m;
        return;
    }
    m->group->on_task_done(m);
}

void task_group::on_task_done(member* m) {
    any_task t = std::move(m->task);
    m->unlink();
    delete m;
    --size_;

    if (on_completed_ && size_ == 0 && !on_completed_.done()) on_completed_.set_result();

    if (t.cancelled()) return;
    std::exception_ptr exc = t.exception();
    if (!exc) return;
    errors_.push_back(exc);
    if (!base_error_ && is_base_error(exc)) base_error_ = exc;

    if (parent_.done()) {
        // CPython is not sure this can happen either; it reports it.
        loop_->call_exception_handler({"Task " + t.describe() + " has errored out but its parent task " +
                                           parent_.describe() + " is already completed",
                                       exc, t.describe(), {}});
        return;
    }
    if (!aborting_ && !parent_cancel_requested_) {
        // Interrupt whatever the body awaits now; aexit() uncancels the
        // parent, so the caller of the group sees the errors, not a
        // cancellation, and can go on after catching them.
        abort();
        parent_cancel_requested_ = true;
        parent_.cancel();
    }
}

void task_group::abort() {
    aborting_ = true;
    for (detail::list_link* l = tasks_.next; l != &tasks_; l = l->next) {
        auto* m = static_cast<member*>(l);
        if (!m->task.done()) m->task.cancel();
    }
}

coroutine<void> task_group::aexit(std::exception_ptr exc) {
    exiting_ = true;
    if (exc && !base_error_ && is_base_error(exc)) base_error_ = exc;
    const bool body_cancelled = exc && exception_group::matches<cancelled_error>(exc);
    std::exception_ptr propagate_cancellation_error = body_cancelled ? exc : nullptr;

    // The parent is being cancelled, or the body raised: stop the children.
    if (exc && !aborting_) abort();

    // A loop, because the wait itself can be cancelled again and again when
    // the parent is cancelled repeatedly (or once while we abort anyway).
    while (size_ > 0) {
        if (!on_completed_) on_completed_ = loop_->create_future<void>();
        std::exception_ptr cancelled;
        try {
            co_await on_completed_;
        } catch (const cancelled_error&) {
            cancelled = std::current_exception();
        }
        if (cancelled && !aborting_) {
            // Cancelled from outside while only waiting for the children.
            propagate_cancellation_error = cancelled;
            abort();
        }
        on_completed_ = {};
    }

    if (parent_cancel_requested_) {
        // We cancelled the parent ourselves: we must uncancel it. Only if no
        // other cancellation remains is the cancelled_error ours to drop.
        if (parent_.uncancel() == 0) propagate_cancellation_error = nullptr;
    }

    // As CPython 3.12: after the uncancel, before everything else.
    if (base_error_) {
        errors_.clear();
        std::rethrow_exception(base_error_);
    }

    // Errors take priority over a cancellation.
    if (propagate_cancellation_error && errors_.empty()) std::rethrow_exception(propagate_cancellation_error);

    if (exc && !body_cancelled) errors_.push_back(exc);

    if (!errors_.empty()) {
        // Cancelled from outside as well: uncancel and cancel again, which
        // keeps the count and makes the parent's next co_await raise it.
        if (parent_.cancelling() > 0) {
            parent_.uncancel();
            parent_.cancel();
        }
        std::vector<std::exception_ptr> errors = std::move(errors_);
        errors_.clear();
        // BaseExceptionGroup(...): an exception_group unless some error is
        // not an Exception.
        std::rethrow_exception(make_exception_group("unhandled errors in a TaskGroup", std::move(errors)));
    }
}

}  // namespace pyco
