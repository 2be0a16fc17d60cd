// pyco/run.hpp — asyncio.run: pyco::run(main()).
//
// Makes a fresh loop, runs main to completion and returns its result (or
// raises what it raised). Then, as asyncio.run does: cancels the tasks
// still pending and waits for them (reporting any that failed otherwise),
// finalises async generators, shuts the default executor down, and closes
// the loop.
//
// Ctrl-C, as asyncio.run since 3.11: on the main thread, if SIGINT has its
// default action, the first SIGINT cancels main (so its cleanup runs) and
// run() then raises keyboard_interrupt; a second SIGINT raises it at once.
#pragma once

#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/task.hpp>

namespace pyco {

namespace detail {
// Everything asyncio.run does after main ends. Never throws.
void finish_run(event_loop& loop) noexcept;

// SIGINT -> cancel main, while run() runs (asyncio.Runner._on_sigint).
class sigint_guard {
public:
    sigint_guard(event_loop& loop, any_task main);
    ~sigint_guard();
    sigint_guard(const sigint_guard&) = delete;
    sigint_guard& operator=(const sigint_guard&) = delete;
    // main ended cancelled because of Ctrl-C: raise keyboard_interrupt.
    bool interrupted_main() noexcept;

private:
    event_loop& loop_;
    any_task main_;
    int interrupts_ = 0;
    bool installed_ = false;
};
}  // namespace detail

template <class T>
T run(coroutine<T> main, loop_options options = {}) {
    if (detail::running_loop() != nullptr) {
        throw runtime_error("pyco::run() cannot be called from a running event loop");
    }
    event_loop loop(options);
    struct finisher {
        event_loop& l;
        ~finisher() { detail::finish_run(l); }
    } fin{loop};
    task<T> main_task = loop.create_task(std::move(main));
    detail::sigint_guard sigint(loop, main_task);
    try {
        return loop.run_until_complete(main_task);
    } catch (const cancelled_error&) {
        if (sigint.interrupted_main()) throw keyboard_interrupt();
        throw;
    }
}

}  // namespace pyco
