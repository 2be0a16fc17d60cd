// The cancellation sweep over I/O (issue 11 §3): CPython's asyncio tests
// cancel at every await; these do it for I/O operations. A scenario runs an
// operation as a task while a driver yields the loop one iteration at a
// time (sleep(0)); run once uncancelled, it counts the iterations the
// operation takes (its await points as the loop sees them); then it runs
// once per point k with task.cancel() landing after k iterations, each run
// in a fresh loop, and checks:
//   - the scenario's own invariant (nothing lost or duplicated, the
//     connection still usable where CPython keeps it usable);
//   - no task leaks: all_tasks() holds only the main task at the end;
//   - no fd leaks: /proc/self/fd has as many entries after the loop is
//     closed as before it was made.
// Real sockets on loopback make the count vary a little from run to run
// (readiness may come one iteration earlier or later): the invariants hold
// whichever point the cancel lands on, so that only moves the points.
// Long operations (a child process) are sampled: every point up to
// dense_points, then evenly up to the count.
#pragma once

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <functional>
#include <typeinfo>
#include <string>

#include <gtest/gtest.h>

#include <pyco/coroutine.hpp>
#include <pyco/errors.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace sweep {

inline int open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr) ++n;
        ::closedir(d);
    }
    return n;
}

// Yields until t is done, cancelling it after k iterations (k < 0: never).
// Returns the iterations it took; awaits t's end either way (its outcome is
// the caller's to read).
template <class T>
pyco::coroutine<int> drive(pyco::task<T>& t, int k, int give_up = 200000) {
    int n = 0;
    while (!t.done() && n < give_up) {
        if (n == k) {
            t.cancel();
            break;
        }
        co_await pyco::sleep(std::chrono::seconds(0));
        ++n;
    }
    while (!t.done()) co_await pyco::sleep(std::chrono::seconds(0));
    co_return n;
}

// True if t ended cancelled (its result is then not to be read).
template <class T>
bool ended_cancelled(pyco::task<T>& t) {
    return t.cancelled();
}

inline bool only_main_task() { return pyco::all_tasks().size() == 1; }

// scenario(k): one run cancelling at point k (k < 0: never), returning the
// iteration count. Runs it uncancelled, then once per point, each in its
// own loop, checking fds around each run. Returns the number of points.
inline int sweep(const std::function<pyco::coroutine<int>(int)>& scenario, int dense_points = 64,
                 int max_points = 160) {
    const int fds0 = open_fds();
    const int n = pyco::run(scenario(-1));
    EXPECT_EQ(open_fds(), fds0) << "uncancelled run";
    std::vector<int> points;
    for (int k = 0; k <= n; ++k) {
        if (k < dense_points || n <= max_points) {
            points.push_back(k);
        }
    }
    if (n > max_points) {
        const int rest = max_points - dense_points;
        for (int i = 1; i <= rest; ++i) points.push_back(dense_points + (n - dense_points) * i / rest);
    }
    points.erase(std::unique(points.begin(), points.end()), points.end());
    for (int k : points) {
        const int before = open_fds();
        if (std::getenv("PYCO_SWEEP_TRACE")) std::fprintf(stderr, "sweep: point %d of %d\n", k, n);
        try {
            (void)pyco::run(scenario(k));
        } catch (const pyco::base_exception& e) {
            ADD_FAILURE() << "cancelled at point " << k << " of " << n << ": " << typeid(e).name() << " " << e.what();
        }
        EXPECT_EQ(open_fds(), before) << "fd leak when cancelled at point " << k << " of " << n;
        if (::testing::Test::HasFailure()) {
            ADD_FAILURE() << "first failure at point " << k << " of " << n;
            break;
        }
    }
    return static_cast<int>(points.size());
}

}  // namespace sweep
