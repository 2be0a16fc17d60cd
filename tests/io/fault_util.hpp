// Shared by the fault schedule tests (tests/io/fault_*_test.cpp).
//
// What every schedule checks (the invariants of issue 11, section 2):
//   - delivery: what a peer received is exactly a prefix of what was sent
//     (each byte once, in order); if it is shorter than what was sent, some
//     side saw an error: there is no silent loss;
//   - typing: every error that surfaced is one of the types an injected
//     kernel error maps to (connection_reset_error, broken_pipe_error, or an
//     OSError with ENOBUFS/ENOMEM/EMFILE, as make_os_error makes them, and
//     ENOTCONN from a shutdown() after the peer reset), never
//     anything else, never a crash;
//   - no hang: each schedule runs under a timeout;
//   - no leak: the fds open after the loop closed are those open before it,
//     and no task is left when the scenario ends (LSan, in the sanitize
//     build, checks the buffers).
// A failing schedule names its seed and the PYCO_FAULTS string that
// reproduces it (FAULT_SEED=N runs that seed alone).
#pragma once

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include <pyco/detail/faults.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/run.hpp>

#include <gtest/gtest.h>

namespace fault_test {

inline int open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

// The error's description if it is one an injected fault may surface as;
// else "UNEXPECTED: ..." (the test fails on it).
inline std::string classify(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const pyco::connection_reset_error&) {
        return "ECONNRESET";
    } catch (const pyco::broken_pipe_error&) {
        return "EPIPE";
    } catch (const std::system_error& x) {
        const int c = x.code().value();
        if (c == ENOBUFS) return "ENOBUFS";
        if (c == ENOMEM) return "ENOMEM";
        if (c == EMFILE) return "EMFILE";  // accept's, reported by the server
        if (c == ENOTCONN) return "ENOTCONN";  // shutdown() after the peer's reset
        return std::string("UNEXPECTED system_error: ") + x.what();
    } catch (const pyco::cancelled_error&) {
        return "UNEXPECTED: cancelled (by the schedule's timeout?)";
    } catch (const std::exception& x) {
        return std::string("UNEXPECTED: ") + x.what();
    } catch (...) {
        return "UNEXPECTED: not a std::exception";
    }
}

// The seeds to run: FAULT_SEED=N alone, else FAULT_SEEDS (count) from
// `first`, else `count` from `first`.
inline std::vector<std::uint64_t> seeds(std::uint64_t first, std::uint64_t count) {
    std::vector<std::uint64_t> v;
    if (const char* one = std::getenv("FAULT_SEED")) {
        v.push_back(std::strtoull(one, nullptr, 10));
        return v;
    }
    if (const char* n = std::getenv("FAULT_SEEDS")) count = std::strtoull(n, nullptr, 10);
#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__)
    count = count / 4 + 1;
#elif __has_feature(address_sanitizer)
    count = count / 4 + 1;
#endif
#endif
    for (std::uint64_t s = first; s < first + count; ++s) v.push_back(s);
    return v;
}

// Per seed: a rate among a few decades, so that some schedules fail early
// and some go far.
inline pyco::detail::fault_config config_for(std::uint64_t seed, std::uint32_t kinds) {
    static constexpr double rates[] = {0.005, 0.02, 0.05, 0.2};
    pyco::detail::fault_config c;
    c.seed = seed;
    c.rate = rates[seed % 4];
    c.kinds = kinds;
    c.accept_retry_delay = std::chrono::milliseconds(5);
    return c;
}

inline std::string repro(const pyco::detail::fault_config& c) {
    std::string s = "seed ";
    s += std::to_string(c.seed);
    s += " (PYCO_FAULTS=";
    s += pyco::detail::describe(c);
    s += "; FAULT_SEED=";
    s += std::to_string(c.seed);
    s += ")";
    return s;
}

// One line for docs/reliability.md: schedules, bytes, faults by kind.
inline void print_totals(std::uint64_t clean, std::uint64_t failed, std::uint64_t bytes,
                         const pyco::detail::fault_counts& before) {
    static constexpr const char* names[] = {"eagain", "eintr", "short", "delay", "reset",
                                            "epipe", "enobufs", "enomem", "emfile"};
    const auto after = pyco::detail::fault_totals();
    std::printf("schedules: %llu clean, %llu with errors; %llu bytes delivered; %llu faults at %llu decisions:",
                static_cast<unsigned long long>(clean), static_cast<unsigned long long>(failed),
                static_cast<unsigned long long>(bytes),
                static_cast<unsigned long long>(after.total() - before.total()),
                static_cast<unsigned long long>(after.decisions - before.decisions));
    for (int i = 0; i < 9; ++i) {
        std::printf(" %s %llu", names[i], static_cast<unsigned long long>(after.injected[i] - before.injected[i]));
    }
    std::printf("\n");
}

struct outcome {
    std::string sent;
    std::string received;
    std::vector<std::string> errors;    // raised to a peer (classified)
    std::vector<std::string> reported;  // given to the loop's exception handler
    bool finished = false;            // not cut by the timeout
    std::size_t tasks_left = 0;
};

// Records what the loop's exception handler gets (accept's EMFILE...).
inline void watch_handler(outcome& out) {
    pyco::get_running_loop().set_exception_handler([&out](pyco::event_loop&, const pyco::exception_context& c) {
        out.reported.push_back(c.exception ? classify(c.exception) : "UNEXPECTED: " + c.message);
    });
}

inline void check(const pyco::detail::fault_config& c, const outcome& out, int fds_before) {
    const std::string who = repro(c);
    EXPECT_TRUE(out.finished) << "hang: " << who;
    EXPECT_EQ(out.tasks_left, 0u) << "tasks left: " << who;
    EXPECT_EQ(open_fds(), fds_before) << "fd leak: " << who;
    for (const auto& e : out.reported) EXPECT_EQ(e.find("UNEXPECTED"), std::string::npos) << e << ": " << who;
    for (const auto& e : out.errors) EXPECT_EQ(e.find("UNEXPECTED"), std::string::npos) << e << ": " << who;
    const bool prefix = out.received.size() <= out.sent.size() &&
                        std::equal(out.received.begin(), out.received.end(), out.sent.begin());
    EXPECT_TRUE(prefix) << "received bytes are not a prefix of those sent (" << out.received.size() << " of "
                        << out.sent.size() << "): " << who;
    if (out.received.size() < out.sent.size()) {
        EXPECT_FALSE(out.errors.empty()) << "silent loss: " << out.received.size() << " of " << out.sent.size()
                                         << " bytes came back and nobody saw an error: " << who;
    }
}

template <class Scenario>
inline void run_schedules(Scenario scenario, std::uint64_t first, std::uint64_t count, std::uint32_t kinds,
                          pyco::io_backend_kind backend = pyco::io_backend_kind::automatic) {
    std::uint64_t bytes = 0, failed_runs = 0, clean_runs = 0;
    const auto before = pyco::detail::fault_totals();
    for (std::uint64_t seed : seeds(first, count)) {
        const pyco::detail::fault_config c = config_for(seed, kinds);
        const int fds = open_fds();
        outcome out;
        {
            pyco::loop_options o;
            o.faults = &c;
            o.backend = backend;
            pyco::run(scenario(seed, out), o);
        }
        check(c, out, fds);
        if (std::getenv("FAULT_VERBOSE")) {
            std::printf("seed %llu: sent %zu received %zu finished %d errors:", static_cast<unsigned long long>(seed),
                        out.sent.size(), out.received.size(), out.finished ? 1 : 0);
            for (const auto& e : out.errors) std::printf(" %s", e.c_str());
            std::printf(" reported:");
            for (const auto& e : out.reported) std::printf(" %s", e.c_str());
            std::printf("\n");
        }
        bytes += out.received.size();
        (out.errors.empty() ? clean_runs : failed_runs) += 1;
        if (::testing::Test::HasFailure()) {
            ADD_FAILURE() << "first failing schedule: " << repro(c);
            return;
        }
    }
    print_totals(clean_runs, failed_runs, bytes, before);
}


}  // namespace fault_test
