// pyco/detail/faults.hpp — fault injection at the I/O seam (tests only; not
// API: nothing outside pyco's own tests should name it).
//
// A loop made with loop_options::faults, or under PYCO_FAULTS in the
// environment, owns a fault_injector: a seeded schedule that decides, at
// each decision point, whether an operation fails, completes short, or is
// delayed. Errors the kernel returns are injected where the syscall is made,
// so the backends' own handling of them is what gets exercised:
//   - try_transfer (every epoll transfer, io_uring's tried ones): EINTR (the
//     retry loop), EAGAIN, a short read or write, ECONNRESET, EPIPE (sends),
//     ENOBUFS (sends), ENOMEM;
//   - the epoll backend's accept: EINTR, EAGAIN, EMFILE, ENOBUFS, ENOMEM;
//     its epoll_wait: EINTR;
//   - the io_uring backend, where it would write an SQE for a receive, send
//     or accept: the CQE the kernel could have given instead (EAGAIN, which
//     the backend answers by polling; EINTR, which io_uring/net.c makes of
//     an interrupted attempt and the backend submits again; or a fatal
//     error);
//   - delays: a wrapper backend (make_fault_backend) holds final one-shot
//     completions for a few ready phases, and turns some inline results of
//     submit() into later completions, as the seam allows.
//
// Honesty rules (an injected fault is one the kernel could produce):
//   - An injected error is returned *instead of* the syscall: nothing was
//     transferred or dequeued (the kernel's EMFILE leaves the connection in
//     the accept queue; its ECONNRESET consumes nothing).
//   - An injected EAGAIN on epoll owes the fd an edge: the data (or room)
//     may already be there, and edge-triggered epoll would never report it
//     again. The backend plays the owed edges at its next wait, which is
//     what the kernel does when data arrives just after an EAGAIN.
//   - A short read is a read into a smaller buffer (op.len shrinks), which
//     fills: so the backend's "a short read drained the queue" rule is not
//     fooled into waiting for an edge that will not come. Only a
//     transport's receive is shortened (its protocol takes any chunking):
//     a one-shot receive of one small message gets it whole from Linux,
//     and programs (and CPython's own tests) rely on that. Likewise only a
//     send of more than 16 KiB (a fresh TCP socket's send buffer) may be
//     short. A short write sends a prefix: part of the first iovec (epoll; io_uring with one
//     iovec) or the first iovec of several (io_uring).
//
// Cost when off: g_faults_on is false unless some loop of the process has
// faults; every hook is one predictable branch on it, and a loop without
// faults has no wrapper backend (no virtual call added).
//
// Thread rule: an injector belongs to its loop; tls_faults is the injector
// of the loop running on this thread (set by run_forever), so two loops on
// two threads draw from their own schedules.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pyco::detail {

class io_backend;
struct io_op;
class ready_ring;

enum fault_kind : std::uint32_t {
    fk_eagain = 1u << 0,
    fk_eintr = 1u << 1,
    fk_short = 1u << 2,
    fk_delay = 1u << 3,
    fk_reset = 1u << 4,    // ECONNRESET
    fk_epipe = 1u << 5,    // EPIPE (sends)
    fk_enobufs = 1u << 6,  // ENOBUFS (sends, accept)
    fk_enomem = 1u << 7,   // ENOMEM
    fk_emfile = 1u << 8,   // EMFILE (accept)
};
// Faults every correct program survives unchanged: the retry paths.
constexpr std::uint32_t fk_benign = fk_eagain | fk_eintr | fk_short | fk_delay;
constexpr std::uint32_t fk_fatal = fk_reset | fk_epipe | fk_enobufs | fk_enomem | fk_emfile;

struct fault_config {
    std::uint64_t seed = 1;
    double rate = 0.05;  // the chance that a decision point injects something
    std::uint32_t kinds = fk_benign;
    // A test-only knob: how long a server pauses accepting after EMFILE and
    // its kin (asyncio's ACCEPT_RETRY_DELAY, 1 s), so that thousands of
    // schedules do not wait a second each.
    std::chrono::milliseconds accept_retry_delay{1000};
};

// "seed=N,rate=R,kinds=eagain,eintr,short,delay,reset,epipe,enobufs,enomem,
// emfile" (also "benign", "fatal", "all"); fields may be left out. Throws
// pyco::value_error on anything else.
fault_config parse_faults(std::string_view spec);
std::string describe(const fault_config& c);  // PYCO_FAULTS syntax: what reproduces it

void trace_fault(std::uint32_t kind, std::uint64_t decision);

struct fault_counts {
    std::uint64_t decisions = 0;
    std::uint64_t injected[9] = {};  // by bit of fault_kind
    std::uint64_t accept_calls = 0;  // accept syscalls made (EMFILE: no spin)
    std::uint64_t total() const noexcept {
        std::uint64_t n = 0;
        for (auto v : injected) n += v;
        return n;
    }
};

class fault_injector {
public:
    explicit fault_injector(const fault_config& c) noexcept : cfg_(c), state_(c.seed * 0x9E3779B97F4A7C15ull + 1) {}
    const fault_config& config() const noexcept { return cfg_; }
    // Tests change the schedule mid-run (the same random sequence goes on).
    void set_config(const fault_config& c) noexcept { cfg_ = c; }
    const fault_counts& counts() const noexcept { return counts_; }
    fault_counts& counts() noexcept { return counts_; }

    // One decision point: 0, or the single kind (among `allowed` and the
    // configured ones) to inject.
    std::uint32_t pick(std::uint32_t allowed) noexcept {
        const std::uint32_t can = allowed & cfg_.kinds;
        if (can == 0) return 0;
        ++counts_.decisions;
        if (static_cast<double>(next() >> 11) * 0x1.0p-53 >= cfg_.rate) return 0;
        unsigned n = 0;
        for (std::uint32_t b = can; b; b &= b - 1) ++n;
        unsigned k = static_cast<unsigned>(next() % n);
        std::uint32_t b = can;
        while (k--) b &= b - 1;
        const std::uint32_t kind = b & (~b + 1);
        ++counts_.injected[__builtin_ctz(kind)];
        if (trace) trace_fault(kind, counts_.decisions);
        return kind;
    }
    std::uint64_t below(std::uint64_t n) noexcept { return n ? next() % n : 0; }

    // fds owed an edge by an injected EAGAIN (epoll).
    std::vector<int> owed_edges;
    // PYCO_FAULTS_TRACE=1: each injected fault is printed on stderr.
    bool trace = false;
    // The loop's delaying wrapper backend, if it has one.
    io_backend* wrapper = nullptr;

private:
    std::uint64_t next() noexcept {  // splitmix64
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    fault_config cfg_;
    fault_counts counts_;
    std::uint64_t state_;
};

// Set (never cleared) when a loop with faults is made; relaxed: a loop on
// another thread need not see it at once, only its own injector matters.
extern std::atomic<bool> g_faults_on;
extern thread_local fault_injector* tls_faults;

inline fault_injector* active_faults() noexcept {
    return __builtin_expect(g_faults_on.load(std::memory_order_relaxed), 0) ? tls_faults : nullptr;
}

// Wraps `inner` so that completions may be delayed (fk_delay); the others
// kinds are injected by the backends themselves.
std::unique_ptr<io_backend> make_fault_backend(std::unique_ptr<io_backend> inner, ready_ring& ready);

// What the fault tests read after a run: the totals of every injector the
// process made (an injector's counts are added when its loop closes; any
// thread may close a loop, so under a lock).
fault_counts fault_totals();
void add_fault_totals(const fault_counts& c);

}  // namespace pyco::detail
