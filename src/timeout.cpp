#include <pyco/timeout.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include <pyco/errors.hpp>

namespace pyco {

timeout::~timeout() {
    // A frame destroyed mid-body (an abandoned task) must not leave a timer
    // that would cancel whatever the task has become.
    timer_.cancel();
    // Entered, never exited, and destroyed by its task itself: its scope
    // was left without exit() (see the header).
    if ((state_ == state::active || state_ == state::expiring) && task_ &&
        detail::task_base::current() == task_.base()) {
        report_not_exited();
    }
}

void timeout::report_not_exited() noexcept {
    const bool unwinding = std::uncaught_exceptions() > 0;
    try {
        std::string what = "Timeout " + describe() + " was destroyed without its exit() being called";
        what += unwinding ? " (an exception left its scope: catch it and pass it to exit())"
                          : " (t.exit() ends its scope)";
        // Our cancel() must not stay counted against the task.
        if (state_ == state::expiring) task_.uncancel();
        task_.get_loop().call_exception_handler({std::move(what), nullptr, task_.describe(), {}});
    } catch (...) {
    }
}

const char* timeout::state_name(state s) noexcept {
    // CPython's _State values.
    switch (s) {
        case state::created: return "created";
        case state::active: return "active";
        case state::expiring: return "expiring";
        case state::expired: return "expired";
        case state::finished: return "finished";
    }
    return "?";
}

std::string timeout::describe() const {
    std::string s = std::string("<Timeout [") + state_name(state_) + "]";
    if (state_ == state::active) {
        s += " when=";
        if (when_) {
            // CPython: round(when, 3), as Python prints a float.
            const double secs = std::chrono::duration<double>(when_->time_since_epoch()).count();
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.3f", secs);
            std::string num = buf;
            while (num.size() > 2 && num.back() == '0' && num[num.size() - 2] != '.') num.pop_back();
            s += num;
        } else {
            s += "None";
        }
    }
    return s + ">";
}

std::reference_wrapper<timeout> timeout::aenter() {
    if (state_ != state::created) throw runtime_error("Timeout has already been entered");
    any_task task = current_task();
    // Checked before the state changes: a failed enter leaves it "created".
    if (!task) throw runtime_error("Timeout should be used inside a task");
    state_ = state::active;
    task_ = std::move(task);
    cancelling_ = task_.cancelling();
    reschedule(when_);
    return *this;
}

void timeout::aexit(std::exception_ptr e) {
    // CPython asserts this; async_with never calls aexit after a failed aenter.
    if (state_ != state::active && state_ != state::expiring) {
        throw runtime_error(state_ == state::created ? "Timeout has not been entered"
                                                     : "Timeout has already been exited");
    }
    timer_.cancel();
    timer_ = {};
    if (state_ == state::expiring) {
        state_ = state::expired;
        // uncancel() first, always: our cancel() must not stay counted even
        // when the body swallowed it. Only when no other cancellation came
        // in meanwhile is the cancelled_error ours to turn into a timeout.
        if (task_.uncancel() <= cancelling_ && e && exception_group::matches<cancelled_error>(e)) {
            try {
                std::rethrow_exception(e);
            } catch (...) {
                // `raise TimeoutError from exc_val`: the cause stays nested.
                std::throw_with_nested(timeout_error());
            }
        }
    } else {
        state_ = state::finished;
    }
}

void timeout::reschedule(std::optional<time_point> when) {
    if (state_ != state::active) {
        if (state_ == state::created) throw runtime_error("Timeout has not been entered");
        throw runtime_error(std::string("Cannot change state of ") + state_name(state_) + " Timeout");
    }
    when_ = when;
    timer_.cancel();
    timer_ = {};
    if (!when) return;
    event_loop& loop = get_running_loop();
    // A deadline already reached still waits for the loop: the task is
    // cancelled at its next co_await, never inside reschedule().
    if (*when <= loop.time()) {
        timer_ = loop.call_soon([this] { on_timeout(); });
    } else {
        timer_ = loop.call_at(*when, [this] { on_timeout(); });
    }
}

void timeout::on_timeout() {
    task_.cancel();
    state_ = state::expiring;
    timer_ = {};
}

}  // namespace pyco
