// soak_util.hpp — the soak's pieces that are not pyco: options, the reports
// the children send the parent, process figures (RSS, heap, fds, TIME_WAIT)
// and the byte pattern every echo is checked against. soak.cpp says what
// the soak does.
#pragma once

#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "net/net_test_util.hpp"

namespace soak {

using net_test::raise_fd_limit;

using namespace std::chrono_literals;

// ---- options and reports ---------------------------------------------------

struct options {
    bool uring = false;
    int seconds = 15;
    int connections = 10000;
    std::uint64_t seed = 1;
    int slow_max = 200;
};

constexpr std::size_t high_water = 64 * 1024;   // src/net/socket_transport.cpp
constexpr std::size_t read_size = 64 * 1024;     // the server handler's read(n)
constexpr std::size_t reader_limit = 64 * 1024;  // stream_reader::default_limit
constexpr std::size_t in_flight_max = 2 * reader_limit + read_size + high_water + read_size;
constexpr std::size_t per_conn_budget = 48 * 1024;  // soak.cpp: the RSS bound
constexpr std::size_t uring_ring_max = 4096 * 16 * 1024;
constexpr auto stuck_after = 30s;
constexpr std::size_t err_len = 200;

// Sent over a pipe to the parent (the children are forks of this binary,
// so the layout is the same on both ends).
struct server_report {
    int ok_started = 0;
    std::uint64_t accepted = 0, finished = 0, bytes = 0;
    std::uint64_t resets = 0, broken_pipes = 0, other_errors = 0, handler_reports = 0,
                  handler_reports_reset = 0;
    std::uint64_t drains_waited = 0, max_write_buffer = 0;
    std::uint64_t rss_listen = 0, rss_peak = 0, rss_final = 0, samples = 0;
    // malloc's bytes in use (mallinfo2): at listen, and once the loop closed.
    std::uint64_t heap_listen = 0, heap_peak = 0, heap_final = 0;
    std::uint64_t rss_by_tenth[10] = {}, heap_by_tenth[10] = {};
    std::uint64_t left_open = 0, tasks_left = 0;
    int fds_before = 0, fds_after = 0;
    char first_error[err_len] = {};
};

struct client_report {
    int ok = 0;
    std::uint64_t connects = 0, sessions = 0, rounds = 0, bytes_sent = 0, bytes_echoed = 0;
    std::uint64_t finale_reset = 0, finale_reset_in_flight = 0, finale_halfclose = 0, finale_slowread = 0;
    std::uint64_t rsts = 0, mismatches = 0, errors = 0, stuck = 0, unfinished = 0;
    std::uint64_t p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
    std::uint64_t time_wait_peak = 0;  // TIME_WAIT sockets of the run, sampled every 2 s
    double elapsed_s = 0, ramp_s = 0, tail_s = 0;  // all connected at; ended after the run time
    char first_error[err_len] = {};
};

inline void note_error(char (&slot)[err_len], const std::string& what) {
    if (slot[0] == '\0') std::snprintf(slot, err_len, "%s", what.c_str());
}

inline std::string type_and_what(const std::exception& e) {
    std::string s = typeid(e).name();
    s += ": ";
    s += e.what();
    return s;
}

// ---- process helpers -------------------------------------------------------


inline std::uint64_t rss_bytes() {
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    unsigned long size = 0, resident = 0;
    const int n = std::fscanf(f, "%lu %lu", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

inline std::uint64_t heap_in_use() {
    const struct mallinfo2 mi = ::mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

inline int count_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return -1;
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
    return n - 1;  // the directory's own fd
}

inline bool write_all(int fd, const void* p, std::size_t n) {
    auto* c = static_cast<const char*>(p);
    while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        c += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// ---- the byte pattern ------------------------------------------------------
// Byte k of a session with key s is table[(k + s) % P], P prime: a lost,
// duplicated or reordered run of bytes shifts the pattern (P divides no
// length the client uses), and checks are memcmp against the table.

constexpr std::size_t P = 65521;
inline const std::string& table() {
    static const std::string t = [] {
        std::string s(2 * P, '\0');
        std::uint64_t x = 0x9E3779B97F4A7C15ull;
        for (std::size_t i = 0; i < P; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s[i] = s[i + P] = static_cast<char>(x >> 24);
        }
        return s;
    }();
    return t;
}

inline std::string pattern(std::uint64_t key, std::uint64_t offset, std::size_t n) {
    std::string out;
    out.reserve(n);
    while (out.size() < n) {
        const std::size_t at = (key + offset + out.size()) % P;
        out.append(table(), at, std::min(n - out.size(), P));
    }
    return out;
}

inline bool matches(std::uint64_t key, std::uint64_t offset, std::string_view got) {
    std::size_t done = 0;
    while (done < got.size()) {
        const std::size_t at = (key + offset + done) % P;
        const std::size_t n = std::min(got.size() - done, P);
        if (std::memcmp(got.data() + done, table().data() + at, n) != 0) return false;
        done += n;
    }
    return true;
}

// TIME_WAIT sockets (state 06) in /proc/net/tcp to or from `port` (the
// soak server's): how near the run came to running out of ephemeral ports
// (32768-60999 here). Other programs' sockets are not counted.
inline std::uint64_t count_time_wait(std::uint16_t port) {
    FILE* f = std::fopen("/proc/net/tcp", "r");
    if (f == nullptr) return 0;
    std::uint64_t n = 0;
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
        unsigned local_port = 0, remote_port = 0, st = 0;
        if (std::sscanf(line, "%*s %*x:%x %*x:%x %x", &local_port, &remote_port, &st) == 3 && st == 6 &&
            (local_port == port || remote_port == port)) {
            ++n;
        }
    }
    std::fclose(f);
    return n;
}

}  // namespace soak
