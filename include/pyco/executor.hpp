// pyco/executor.hpp — where blocking work goes: executors and a thread pool.
//
// An executor runs jobs on threads of its own. loop.run_in_executor(fn) and
// pyco::to_thread(fn) use the loop's default executor, a
// thread_pool_executor sized as CPython's ThreadPoolExecutor is by default
// (min(32, cores + 4) threads, started as work arrives), and shut down by
// pyco::run. Pass your own executor to run_in_executor to use another.
//
// Thread rule: submit() and shutdown() may be called from any thread. Jobs
// run on the executor's threads and must reach a loop only through its
// proxy (event_loop::proxy()), never by touching the loop.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <pyco/detail/unique_fn.hpp>

namespace pyco {

class executor {
public:
    virtual ~executor() = default;
    // Run job on one of this executor's threads. After shutdown():
    // runtime_error("cannot schedule new futures after shutdown").
    virtual void submit(detail::unique_fn job) = 0;
    // Refuse new jobs; with wait, finish the queued ones and join.
    virtual void shutdown(bool wait = true) = 0;
};

class thread_pool_executor final : public executor {
public:
    // CPython's default: min(32, cores + 4).
    static std::size_t default_max_workers() noexcept;

    explicit thread_pool_executor(std::size_t max_workers = default_max_workers());
    ~thread_pool_executor() override;  // shutdown(true)

    void submit(detail::unique_fn job) override;
    void shutdown(bool wait = true) override;
    std::size_t max_workers() const noexcept { return max_workers_; }
    std::size_t threads_started() const;

private:
    void worker();

    const std::size_t max_workers_;
    mutable std::mutex m_;
    std::condition_variable cv_;
    std::deque<detail::unique_fn> jobs_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    bool shutdown_ = false;
};

}  // namespace pyco
