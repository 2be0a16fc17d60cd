// pyco/threads.hpp — crossing between threads and the loop.
//
//   loop.call_soon_threadsafe(fn)           any thread -> the loop (event_loop.hpp)
//   co_await loop.run_in_executor(fn)       the loop -> a worker thread and back
//   co_await pyco::to_thread(fn, args...)   the same, on the running loop
//   pyco::run_coroutine_threadsafe(c, loop) any thread -> a task on the loop
//   h.resume() in another thread            an awaiter of your own whose
//                                           await_suspend gave h to a thread:
//                                           the task goes on on its loop
//
// Cancellation: cancelling a task that awaits run_in_executor/to_thread
// raises cancelled_error in the task at once; the function itself runs to
// its end on its thread (a thread cannot be interrupted) and its result is
// dropped — as in CPython. Cancelling the future of run_coroutine_threadsafe
// cancels the task on the loop.
//
// Lifetimes: a job holds the loop's proxy, never the loop; if the loop has
// closed when the job ends, the result is dropped (and the future it would
// have completed is leaked rather than touched from the wrong thread).
// pyco::run shuts the default executor down, joining its threads while the
// loop still runs (a job may still wait for the loop, as in CPython), before
// it closes the loop, so nothing is dropped there — unless a Ctrl-C cuts
// that wait short: then run() raises keyboard_interrupt at once and the
// jobs still running finish on their own.
#pragma once

#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/executor.hpp>
#include <pyco/future.hpp>
#include <pyco/task.hpp>

namespace pyco {

namespace detail {

// Carries a future's reference across threads without touching its
// (non-atomic) count there: taken on the loop thread, given back on it.
template <class State>
struct loop_owned_ref {
    State* state;
};

template <class R, class F>
void complete_from_thread(std::shared_ptr<loop_proxy> proxy, loop_owned_ref<with_result<R, future_base>> ref,
                          F& fn) {
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<R>, int, R>> value;
    try {
        if constexpr (std::is_void_v<R>) {
            fn();
            value.emplace(0);
        } else {
            value.emplace(fn());
        }
    } catch (...) {
        error = std::current_exception();
    }
    // Moved, not copied: the exception and the value then die on the loop
    // thread, not here (TSan cannot see libstdc++'s exception_ptr count).
    proxy->post([ref, error = std::move(error), value = std::move(value)]() mutable {
        auto s = intrusive_ptr<with_result<R, future_base>>::adopt(ref.state);
        (void)value;  // unused when R is void
        if (s->done()) return;  // cancelled meanwhile: the result is dropped
        if (error) {
            s->set_exception(error);
        } else if constexpr (std::is_void_v<R>) {
            s->set_result();
        } else {
            s->set_result(std::move(*value));
        }
    });
}

}  // namespace detail

template <class F>
auto event_loop::run_in_executor(executor& ex, F fn) -> future<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    future<R> fut(*this);
    auto* state = static_cast<detail::with_result<R, detail::future_base>*>(fut.base());
    state->add_ref();  // given to the job; released on the loop thread
    detail::loop_owned_ref<detail::with_result<R, detail::future_base>> ref{state};
    try {
        ex.submit([proxy = proxy_, ref, fn = std::move(fn)]() mutable {
            detail::complete_from_thread<R>(std::move(proxy), ref, fn);
        });
    } catch (...) {
        state->release();
        throw;
    }
    return fut;
}

template <class F>
auto event_loop::run_in_executor(F fn) -> future<std::invoke_result_t<F&>> {
    return run_in_executor(default_executor(), std::move(fn));
}

// asyncio.to_thread(fn, *args): fn(args...) on the running loop's default
// executor.
template <class F, class... Args>
auto to_thread(F fn, Args... args) -> coroutine<std::invoke_result_t<F&, Args&...>> {
    auto call = [fn = std::move(fn), ... a = std::move(args)]() mutable { return std::invoke(fn, a...); };
    auto fut = get_running_loop().run_in_executor(std::move(call));
    co_return co_await fut;
}

namespace detail {

// Shared by the thread that holds the future and the loop. Only its
// shared_ptr count is touched off the loop thread: `task` and
// `cancel_requested` are read and written on the loop thread alone, and it
// owns no reference to the task (a task's count is not thread-safe).
struct threadsafe_link {
    task_base* task = nullptr;  // null until created, and once done
    bool cancel_requested = false;
};

}  // namespace detail

// What run_coroutine_threadsafe gives: a std::future that can also cancel
// the task it waits for.
template <class T>
class threadsafe_future : public std::future<T> {
public:
    threadsafe_future(std::future<T> f, std::shared_ptr<detail::loop_proxy> proxy,
                      std::shared_ptr<detail::threadsafe_link> link)
        : std::future<T>(std::move(f)), proxy_(std::move(proxy)), link_(std::move(link)) {}

    // concurrent.futures.Future.cancel(), from any thread: asks the loop to
    // cancel the task. False if the loop has closed.
    bool cancel() {
        return proxy_->post([link = link_] {
            if (link->task != nullptr) {
                link->task->cancel();
            } else {
                link->cancel_requested = true;  // not created yet
            }
        });
    }

private:
    std::shared_ptr<detail::loop_proxy> proxy_;
    std::shared_ptr<detail::threadsafe_link> link_;
};

// asyncio.run_coroutine_threadsafe(coro, loop): from any thread, run coro as
// a task on loop; the returned future gives its result (get() blocks).
template <class T>
threadsafe_future<T> run_coroutine_threadsafe(coroutine<T> coro, event_loop& loop) {
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> f = promise->get_future();
    auto link = std::make_shared<detail::threadsafe_link>();
    loop.call_soon_threadsafe([&loop, promise, link, c = std::move(coro)]() mutable {
        task<T> t;
        try {
            t = pyco::create_task(loop, std::move(c));
        } catch (...) {
            promise->set_exception(std::current_exception());
            return;
        }
        link->task = t.base();
        if (link->cancel_requested) t.cancel();
        t.add_done_callback([promise, link](task<T>& done) {
            link->task = nullptr;
            try {
                if constexpr (std::is_void_v<T>) {
                    done.result();
                    promise->set_value();
                } else {
                    promise->set_value(std::move(done.result()));
                }
            } catch (...) {
                promise->set_exception(std::current_exception());
            }
        });
    });
    return threadsafe_future<T>(std::move(f), loop.proxy(), std::move(link));
}

}  // namespace pyco
