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
// A SIGINT after main ended, while run() shuts down, raises it at once too
// (out of the cancelling, the generators' closing or the executor's join):
// the loop is still closed, what was pending abandoned, and jobs still
// running in the executor go on in their threads.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/task.hpp>

namespace pyco {

namespace detail {
// Everything asyncio.run does after main ends; always closes the loop. Only
// keyboard_interrupt escapes (Ctrl-C meanwhile), the rest is reported.
void finish_run(event_loop& loop);

// SIGINT -> cancel main while it runs (asyncio.Runner._on_sigint), then
// keyboard_interrupt while run() shuts down (Python's default handler).
class sigint_guard {
public:
    sigint_guard(event_loop& loop, any_task main);
    ~sigint_guard();
    sigint_guard(const sigint_guard&) = delete;
    sigint_guard& operator=(const sigint_guard&) = delete;
    // main ended cancelled because of Ctrl-C: raise keyboard_interrupt.
    bool interrupted_main() noexcept;
    // run() shuts down: from now on Ctrl-C raises, whatever main's state.
    void shutting_down() noexcept { shutting_down_ = true; }

private:
    event_loop& loop_;
    any_task main_;
    int interrupts_ = 0;
    bool installed_ = false;
    bool shutting_down_ = false;
};
}  // namespace detail

template <class T>
T run(coroutine<T> main, loop_options options = {}) {
    if (detail::running_loop() != nullptr) {
        throw runtime_error("pyco::run() cannot be called from a running event loop");
    }
    event_loop loop(options);
    task<T> main_task = loop.create_task(std::move(main));
    // Kept through the shutdown: a Ctrl-C there raises keyboard_interrupt.
    detail::sigint_guard sigint(loop, main_task);
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<T>, char, T>> value;
    try {
        if constexpr (std::is_void_v<T>) {
            loop.run_until_complete(main_task);
        } else {
            value.emplace(loop.run_until_complete(main_task));
        }
    } catch (const cancelled_error&) {
        error = sigint.interrupted_main() ? std::make_exception_ptr(keyboard_interrupt()) : std::current_exception();
    } catch (...) {
        error = std::current_exception();
    }
    // As asyncio.Runner.close: its keyboard_interrupt replaces main's outcome.
    sigint.shutting_down();
    detail::finish_run(loop);
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace pyco
