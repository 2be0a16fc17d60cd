// pyco/run.hpp — asyncio.run: pyco::run(main()).
//
// Makes a fresh loop, runs main to completion and returns its result (or
// raises what it raised). Then, as asyncio.run does: cancels the tasks
// still pending and waits for them (reporting any that failed otherwise),
// finalises async generators, and closes the loop.
#pragma once

#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/task.hpp>

namespace pyco {

namespace detail {
// Everything asyncio.run does after main ends. Never throws.
void finish_run(event_loop& loop) noexcept;
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
    return loop.run_until_complete(loop.create_task(std::move(main)));
}

}  // namespace pyco
