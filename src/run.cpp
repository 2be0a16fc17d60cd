#include <pyco/run.hpp>

#include <pyco/async_generator.hpp>

#include <signal.h>
#include <unistd.h>

namespace pyco::detail {

sigint_guard::sigint_guard(event_loop& loop, any_task main) : loop_(loop), main_(std::move(main)) {
    // Only on the main thread, and only over the default action: a program
    // with its own SIGINT handler keeps it (as asyncio.Runner does).
    if (::getpid() != ::gettid()) return;
    struct sigaction current {};
    if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
    try {
        loop_.add_signal_handler(SIGINT, [this] {
            ++interrupts_;
            if (interrupts_ == 1 && !shutting_down_ && !main_.done()) {
                main_.cancel();
                return;
            }
            throw keyboard_interrupt();
        });
        installed_ = true;
    } catch (...) {
        // Another loop owns the signal handlers: run without Ctrl-C handling.
    }
}

sigint_guard::~sigint_guard() {
    if (installed_ && !loop_.is_closed()) {
        try {
            loop_.remove_signal_handler(SIGINT);
        } catch (...) {
        }
    }
}

bool sigint_guard::interrupted_main() noexcept {
    return interrupts_ > 0 && main_.done() && main_.cancelled() && main_.uncancel() == 0;
}

namespace {

struct all_done {
    std::size_t remaining;
    intrusive_ptr<with_result<void, future_base>> fut;
};

void count_down(void* ctx, void* fut, bool run) {
    auto f = intrusive_ptr<future_base>::adopt(static_cast<future_base*>(fut));
    if (!run || fut == nullptr) return;  // ctx may be gone: touch nothing
    auto* w = static_cast<all_done*>(ctx);
    if (--w->remaining == 0) w->fut->set_result();
}

// asyncio.runners._cancel_all_tasks
void cancel_all_tasks(event_loop& loop) {
    std::vector<any_task> tasks = all_tasks(loop);
    if (tasks.empty()) return;
    for (any_task& t : tasks) t.cancel();
    // Wait for all, as gather(*tasks, return_exceptions=True) would.
    all_done w{tasks.size(), intrusive_ptr<with_result<void, future_base>>::adopt(
                                 new with_result<void, future_base>(loop))};
    for (any_task& t : tasks) t.base()->add_callback(&count_down, &w);
    run_until_done(loop, *w.fut);
    for (any_task& t : tasks) {
        if (t.cancelled()) continue;
        if (std::exception_ptr e = t.exception()) {
            loop.call_exception_handler(
                {"unhandled exception during pyco::run() shutdown", e, t.describe(), {}});
        }
    }
}

}  // namespace

void finish_run(event_loop& loop) {
    // asyncio.Runner.close: a KeyboardInterrupt ends the shutdown, and the
    // loop is closed all the same.
    struct closer {
        event_loop& l;
        ~closer() {
            try {
                l.close();
            } catch (...) {
            }
        }
    } close_anyway{loop};
    try {
        cancel_all_tasks(loop);
    } catch (const keyboard_interrupt&) {
        throw;
    } catch (...) {
        loop.call_exception_handler({"error while cancelling tasks in pyco::run()", std::current_exception(), {}, {}});
    }
    try {
        loop.run_until_complete(loop.shutdown_asyncgens());
    } catch (const keyboard_interrupt&) {
        throw;
    } catch (...) {
        loop.call_exception_handler(
            {"error while closing asynchronous generators in pyco::run()", std::current_exception(), {}, {}});
    }
    try {
        loop.shutdown_default_executor();
    } catch (const keyboard_interrupt&) {
        throw;
    } catch (...) {
        loop.call_exception_handler({"error while shutting down the default executor", std::current_exception(), {}, {}});
    }
}

}  // namespace pyco::detail
