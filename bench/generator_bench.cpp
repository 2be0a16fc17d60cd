// generator_bench.cpp — what a pyco::generator costs, against a plain
// std::function callback loop doing the same work in the same binary.
//
// Every per-item case reports `ns_per_item` (and items_per_second); every case
// checks its own result and fails with SkipWithError when it is wrong. The
// generator functions and the callback producers are [[gnu::noinline]], so
// that neither side is folded into a closed-form sum. docs/benchmarks.md has
// the figures, the commands and the CPython counterpart (generator_bench.py).
#include <pyco/generator.hpp>

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>

namespace {

// ---------------------------------------------------------------------------
// Helpers

// Sum of 0 .. n-1.
constexpr std::int64_t triangle(std::int64_t n) { return n * (n - 1) / 2; }

// Report per-item figures for `items` items per iteration.
void per_item(benchmark::State& state, std::int64_t items) {
    const std::int64_t total = items * static_cast<std::int64_t>(state.iterations());
    state.SetItemsProcessed(total);
    state.counters["ns_per_item"] = benchmark::Counter(
        static_cast<double>(total),  // inverted rate: seconds per item, shown as "1.2ns"
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// False (and the benchmark marked failed) when got != want.
bool check(benchmark::State& state, std::int64_t got, std::int64_t want) {
    if (got == want) return true;
    const std::string msg =
        "wrong result: got " + std::to_string(got) + ", want " + std::to_string(want);
    state.SkipWithError(msg.c_str());
    return false;
}

struct ping {};  // what throw_() raises and the generator catches

// ---------------------------------------------------------------------------
// The generators under test

[[gnu::noinline]] pyco::generator<int> count_to(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

// Yields 0 first, then each value sent to it; n sends, then one next() ends it.
[[gnu::noinline]] pyco::generator<int, int> echo(int n) {
    int v = 0;
    for (int k = 0; k <= n; ++k) v = co_yield v;
}

// Yields 0 first, then i+1 after each ping thrown into it and caught there.
// A next() instead of a throw ends it.
[[gnu::noinline]] pyco::generator<int> catcher() {
    int i = 0;
    bool again = true;
    while (again) {
        again = false;
        try {
            co_yield i;
        } catch (const ping&) {
            ++i;
            again = true;
        }
    }
}

// `depth` generators delegating to each other; the innermost yields 0 .. n-1.
[[gnu::noinline]] pyco::generator<int> nested(int depth, int n) {
    if (depth == 0) {
        for (int i = 0; i < n; ++i) co_yield i;
    } else {
        co_yield pyco::from(nested(depth - 1, n));
    }
}

[[gnu::noinline]] pyco::generator<int> empty_gen() { co_return; }

[[gnu::noinline]] pyco::generator<int> one_gen(int v) { co_yield v; }

// ---------------------------------------------------------------------------
// Baselines: the same work through a std::function callback

[[gnu::noinline]] void count_to_cb(int n, const std::function<void(int)>& f) {
    for (int i = 0; i < n; ++i) f(i);
}

// send()'s shape: a value in, a value out, per item.
[[gnu::noinline]] std::int64_t echo_cb(int n, const std::function<int(int)>& f) {
    std::int64_t sum = 0;
    for (int i = 1; i <= n; ++i) sum += f(i);
    return sum;
}

[[gnu::noinline]] void throw_ping() { throw ping{}; }

// The floor of a C++20 generator on this compiler: a bare promise (no send,
// throw, close or delegation; std::suspend_always at each co_yield), resumed
// through its handle as pyco resumes a leaf.
class minimal_gen {
public:
    struct promise_type {
        const int* value = nullptr;
        minimal_gen get_return_object() noexcept {
            return minimal_gen(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        std::suspend_always yield_value(const int& v) noexcept {
            value = &v;
            return {};
        }
        void return_void() noexcept {}
        void unhandled_exception() { throw; }
    };
    minimal_gen(const minimal_gen&) = delete;
    ~minimal_gen() { h_.destroy(); }
    const int* next() {
        h_.resume();
        return h_.done() ? nullptr : h_.promise().value;
    }

private:
    explicit minimal_gen(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

[[gnu::noinline]] minimal_gen minimal_count_to(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

constexpr int kItems = 1 << 16;  // items per iteration of the per-item cases

// ---------------------------------------------------------------------------
// Per item

void BM_baseline_function_void(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum = 0;
        const std::function<void(int)> f = [&sum](int x) { sum += x; };
        count_to_cb(n, f);
        benchmark::DoNotOptimize(sum);
    }
    if (!check(state, sum, triangle(n))) return;
    per_item(state, n);
}
BENCHMARK(BM_baseline_function_void)->Arg(kItems);

void BM_baseline_function_int(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    for (auto _ : state) {
        std::int64_t seen = 0;
        const std::function<int(int)> f = [&seen](int x) {
            seen += x;
            return x;
        };
        sum = echo_cb(n, f);
        benchmark::DoNotOptimize(sum);
        benchmark::DoNotOptimize(seen);
    }
    if (!check(state, sum, triangle(n + 1))) return;
    per_item(state, n);
}
BENCHMARK(BM_baseline_function_int)->Arg(kItems);

void BM_baseline_minimal_coroutine(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum = 0;
        minimal_gen g = minimal_count_to(n);
        while (const int* v = g.next()) sum += *v;
        benchmark::DoNotOptimize(sum);
    }
    if (!check(state, sum, triangle(n))) return;
    per_item(state, n);
}
BENCHMARK(BM_baseline_minimal_coroutine)->Arg(kItems);

void BM_range_for(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum = 0;
        for (int x : count_to(n)) sum += x;
        benchmark::DoNotOptimize(sum);
    }
    if (!check(state, sum, triangle(n))) return;
    per_item(state, n);
}
BENCHMARK(BM_range_for)->Arg(kItems);

void BM_next(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum = 0;
        auto g = count_to(n);
        while (auto v = g.next()) sum += *v;
        benchmark::DoNotOptimize(sum);
    }
    if (!check(state, sum, triangle(n))) return;
    per_item(state, n);
}
BENCHMARK(BM_next)->Arg(kItems);

void BM_send(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    bool ok = true;
    for (auto _ : state) {
        sum = 0;
        auto g = echo(n);
        ok &= g.next() == 0;
        for (int i = 1; i <= n; ++i) sum += *g.send(i);
        ok &= !g.next();
        benchmark::DoNotOptimize(sum);
    }
    if (!ok) return state.SkipWithError("echo did not start with 0 or did not finish");
    if (!check(state, sum, triangle(n + 1))) return;
    per_item(state, n);
}
BENCHMARK(BM_send)->Arg(kItems);

void BM_throw_caught(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t sum = 0;
    bool ok = true;
    for (auto _ : state) {
        sum = 0;
        auto g = catcher();
        ok &= g.next() == 0;
        for (int i = 1; i <= n; ++i) sum += *g.throw_(ping{});
        ok &= !g.next();
        benchmark::DoNotOptimize(sum);
    }
    if (!ok) return state.SkipWithError("catcher did not start with 0 or did not finish");
    if (!check(state, sum, triangle(n + 1))) return;
    per_item(state, n);
}
BENCHMARK(BM_throw_caught)->Arg(1000);

// The floor under throw_(): one C++ throw caught one frame up.
void BM_baseline_throw_catch(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    std::int64_t caught = 0;
    for (auto _ : state) {
        caught = 0;
        for (int i = 0; i < n; ++i) {
            try {
                throw_ping();
            } catch (const ping&) {
                ++caught;
            }
        }
        benchmark::DoNotOptimize(caught);
    }
    if (!check(state, caught, n)) return;
    per_item(state, n);
}
BENCHMARK(BM_baseline_throw_catch)->Arg(1000);

// yield from, `depth` levels, per item. Building the chain (the first next())
// and unwinding it (the last next(), destruction) are O(depth) once and are
// left out of the timing: only the n-1 items in between are timed.
void BM_yield_from(benchmark::State& state) {
    const int depth = static_cast<int>(state.range(0));
    const int n = kItems + 1;
    std::int64_t sum = 0;
    bool ok = true;
    for (auto _ : state) {
        state.PauseTiming();
        sum = 0;
        {
            auto g = nested(depth, n);
            ok &= g.next() == 0;
            state.ResumeTiming();
            for (int i = 1; i < n; ++i) sum += *g.next();
            benchmark::DoNotOptimize(sum);
            state.PauseTiming();
            ok &= !g.next();
        }
        state.ResumeTiming();
    }
    if (!ok) return state.SkipWithError("chain did not start with 0 or did not finish");
    if (!check(state, sum, triangle(n))) return;
    per_item(state, n - 1);
}
BENCHMARK(BM_yield_from)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);

// ---------------------------------------------------------------------------
// Life cycle: create + first next() + destroy, per generator

// The body ends in the first next(): destroying it is a bare frame destroy.
void BM_lifecycle_empty(benchmark::State& state) {
    std::int64_t empty = 0;
    for (auto _ : state) {
        auto g = empty_gen();
        auto v = g.next();
        empty += !v.has_value();
        benchmark::DoNotOptimize(v);
    }
    check(state, empty, static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_lifecycle_empty);

// The literal case: first next() yields, then the generator is destroyed
// while suspended, so its destructor close()s it (generator_exit is raised at
// the co_yield, as CPython's gen.__del__ does).
void BM_lifecycle_suspended(benchmark::State& state) {
    std::int64_t sum = 0;
    int i = 0;
    for (auto _ : state) {
        auto g = one_gen(++i & 1023);
        sum += *g.next();
    }
    std::int64_t want = 0;
    for (std::int64_t k = 1; k <= static_cast<std::int64_t>(state.iterations()); ++k) {
        want += k & 1023;
    }
    check(state, sum, want);
}
BENCHMARK(BM_lifecycle_suspended);

// First next() yields, a second next() finishes the body, then destroy: no
// close() needed.
void BM_lifecycle_exhausted(benchmark::State& state) {
    std::int64_t sum = 0;
    int i = 0;
    bool ok = true;
    for (auto _ : state) {
        auto g = one_gen(++i & 1023);
        sum += *g.next();
        ok &= !g.next();
    }
    if (!ok) return state.SkipWithError("one_gen yielded twice");
    std::int64_t want = 0;
    for (std::int64_t k = 1; k <= static_cast<std::int64_t>(state.iterations()); ++k) {
        want += k & 1023;
    }
    check(state, sum, want);
}
BENCHMARK(BM_lifecycle_exhausted);

// ---------------------------------------------------------------------------
// Allocation: the frame's share of the life cycle

// Bytes malloc handed out for a generator's frame (the chunk's usable size:
// the frame size rounded up to malloc's granularity).
template <class G>
std::size_t frame_bytes(G& g) {
    using promise = typename G::promise_type;
    auto& p = static_cast<promise&>(pyco::detail::generator_access::node_of(g));
    return malloc_usable_size(std::coroutine_handle<promise>::from_promise(p).address());
}

void BM_frame_sizes(benchmark::State& state) {
    auto a = one_gen(1);
    auto b = empty_gen();
    auto c = count_to(1);
    auto d = nested(1, 1);
    auto e = echo(1);
    for (auto _ : state) benchmark::DoNotOptimize(a);
    state.counters["one_gen_B"] = static_cast<double>(frame_bytes(a));
    state.counters["empty_gen_B"] = static_cast<double>(frame_bytes(b));
    state.counters["count_to_B"] = static_cast<double>(frame_bytes(c));
    state.counters["nested_B"] = static_cast<double>(frame_bytes(d));
    state.counters["echo_B"] = static_cast<double>(frame_bytes(e));
    if (frame_bytes(a) == 0) state.SkipWithError("no frame size");
}
BENCHMARK(BM_frame_sizes)->Iterations(1)->Repetitions(1);

// ::operator new + ::operator delete of `size` bytes, as GCC 12 allocates and
// frees a frame (unsized delete). Sizes: the frames measured above.
void BM_new_delete(benchmark::State& state) {
    const auto size = static_cast<std::size_t>(state.range(0));
    void* probe = ::operator new(size);
    const std::size_t usable = malloc_usable_size(probe);
    ::operator delete(probe);
    if (usable < size) return state.SkipWithError("allocation smaller than asked for");
    for (auto _ : state) {
        void* p = ::operator new(size);
        benchmark::DoNotOptimize(p);
        ::operator delete(p);
    }
}
BENCHMARK(BM_new_delete)->Arg(136)->Arg(168)->Arg(216);

}  // namespace
