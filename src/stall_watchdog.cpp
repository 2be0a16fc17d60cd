#include "stall_watchdog.hpp"

#include <cstdio>

#include <pyco/event_loop.hpp>

namespace pyco::detail {

stall_watchdog::~stall_watchdog() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void stall_watchdog::begin(std::string what, clock::time_point start, clock::duration threshold) {
    {
        std::lock_guard lk(mu_);
        what_ = std::move(what);
        threshold_ = threshold;
        started_ = start;
        ++seq_;
        running_ = true;
        if (!thread_.joinable()) thread_ = std::thread([this] { watch(); });
    }
    // No notify: a wake-up per entry would cost a futex call per task step;
    // the watchdog polls every 10 ms instead (so it reports at most 10 ms
    // late).
}

void stall_watchdog::end() noexcept {
    std::lock_guard lk(mu_);
    running_ = false;
}

void stall_watchdog::watch() {
    std::unique_lock lk(mu_);
    while (!stop_) {
        if (!running_ || reported_ == seq_) {
            // Nothing to watch, or this entry was reported: look again
            // soon (begin() does not wake us).
            cv_.wait_for(lk, std::chrono::milliseconds(10));
            continue;
        }
        const clock::time_point deadline = started_ + threshold_;
        const std::uint64_t seq = seq_;
        if (clock::now() < deadline) {
            cv_.wait_until(lk, deadline);
            continue;
        }
        if (seq_ != seq || !running_) continue;
        reported_ = seq;
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started_).count();
        std::string text = "event loop stalled for " + std::to_string(ms) + " ms: " + what_;
        lk.unlock();
        log_warning(text);
        lk.lock();
    }
}

}  // namespace pyco::detail
