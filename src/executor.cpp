#include <pyco/executor.hpp>

#include <algorithm>

#include <pyco/errors.hpp>

namespace pyco {

std::size_t thread_pool_executor::default_max_workers() noexcept {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    return std::min<std::size_t>(32, cores + 4);
}

thread_pool_executor::thread_pool_executor(std::size_t max_workers)
    : max_workers_(max_workers) {
    if (max_workers == 0) throw value_error("max_workers must be greater than 0");
}

thread_pool_executor::~thread_pool_executor() { shutdown(true); }

std::size_t thread_pool_executor::threads_started() const {
    std::lock_guard<std::mutex> lock(m_);
    return threads_.size();
}

void thread_pool_executor::submit(detail::unique_fn job) {
    std::unique_lock<std::mutex> lock(m_);
    if (shutdown_) throw runtime_error("cannot schedule new futures after shutdown");
    jobs_.push_back(std::move(job));
    // As CPython: a new thread only when no idle one can take the job.
    if (idle_ < jobs_.size() && threads_.size() < max_workers_) {
        threads_.emplace_back([this] { worker(); });
    }
    lock.unlock();
    cv_.notify_one();
}

void thread_pool_executor::worker() {
    std::unique_lock<std::mutex> lock(m_);
    while (true) {
        ++idle_;
        cv_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) return;  // shut down and drained
        detail::unique_fn job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();  // jobs catch their own exceptions (run_in_executor's do)
        job = detail::unique_fn();
        lock.lock();
    }
}

void thread_pool_executor::shutdown(bool wait) {
    {
        std::lock_guard<std::mutex> lock(m_);
        shutdown_ = true;
        if (!wait) jobs_.clear();  // queued jobs are dropped; running ones finish
    }
    cv_.notify_all();
    if (!wait) return;  // the destructor joins
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> lock(m_);
        threads.swap(threads_);
    }
    for (std::thread& t : threads) {
        // A job that shuts its own pool down cannot join itself.
        if (t.get_id() == std::this_thread::get_id()) {
            t.detach();
        } else {
            t.join();
        }
    }
}

}  // namespace pyco
