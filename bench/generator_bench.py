#!/usr/bin/env python3
"""CPython's side of bench/generator_bench.cpp: the same generator cases,
timed with time.perf_counter_ns, printed as ns per item (or per generator for
the life-cycle cases). Plain python3, no third-party packages.

    python3 bench/generator_bench.py [--reps N] [--scale F]

Each case runs --reps times (default 5); the table shows the median and the
best. Every case checks its own result and the script exits 1 if one is wrong.
The deep `yield from` cases run in a thread with a large C stack, since
CPython 3.11 resumes each level of a delegation chain with a C-level call.
"""
import argparse
import statistics
import sys
import threading
import time

DEPTHS = (1, 10, 100, 1000, 10000)
ITEMS = 1 << 16  # items per run of the per-item cases, as in the C++ file


class Ping(Exception):
    pass


# --- the generators under test -------------------------------------------

def count_to(n):
    for i in range(n):
        yield i


def echo(n):
    v = 0
    for _ in range(n + 1):
        v = yield v


def catcher():
    i = 0
    again = True
    while again:
        again = False
        try:
            yield i
        except Ping:
            i += 1
            again = True


def nested(depth, n):
    if depth == 0:
        for i in range(n):
            yield i
    else:
        yield from nested(depth - 1, n)


def empty_gen():
    return
    yield  # a generator function that ends at its first next()


def one_gen(v):
    yield v


# --- the cases: each returns (elapsed_ns, units, checked_ok) ---------------

def triangle(n):
    return n * (n - 1) // 2


def case_for(n):
    g = count_to(n)
    t0 = time.perf_counter_ns()
    s = 0
    for x in g:
        s += x
    t1 = time.perf_counter_ns()
    return t1 - t0, n, s == triangle(n)


def case_next(n):
    g = count_to(n)
    nxt = next
    t0 = time.perf_counter_ns()
    s = 0
    for _ in range(n):
        s += nxt(g)
    t1 = time.perf_counter_ns()
    ok = s == triangle(n) and nxt(g, None) is None
    return t1 - t0, n, ok


def case_send(n):
    g = echo(n)
    ok = next(g) == 0
    send = g.send
    t0 = time.perf_counter_ns()
    s = 0
    for i in range(1, n + 1):
        s += send(i)
    t1 = time.perf_counter_ns()
    ok = ok and s == triangle(n + 1) and next(g, None) is None
    return t1 - t0, n, ok


def case_throw(n):
    g = catcher()
    ok = next(g) == 0
    throw = g.throw
    ping = Ping()
    t0 = time.perf_counter_ns()
    s = 0
    for _ in range(n):
        s += throw(ping)
    t1 = time.perf_counter_ns()
    ok = ok and s == triangle(n + 1) and next(g, None) is None
    return t1 - t0, n, ok


def case_yield_from(depth, n):
    # As in C++: building the chain (the first next()) is not timed. The loop
    # also times the chain's one O(depth) unwinding at the end.
    g = nested(depth, n + 1)
    ok = next(g) == 0
    t0 = time.perf_counter_ns()
    s = 0
    for x in g:
        s += x
    t1 = time.perf_counter_ns()
    return t1 - t0, n, ok and s == triangle(n + 1)


def case_lifecycle_empty(n):
    mk = empty_gen
    nxt = next
    t0 = time.perf_counter_ns()
    ended = 0
    for _ in range(n):
        g = mk()
        if nxt(g, None) is None:
            ended += 1
        del g
    t1 = time.perf_counter_ns()
    return t1 - t0, n, ended == n


def case_lifecycle_suspended(n):
    # first next() yields; `del g` closes the suspended generator
    mk = one_gen
    nxt = next
    t0 = time.perf_counter_ns()
    s = 0
    for i in range(n):
        g = mk(i)
        s += nxt(g)
        del g
    t1 = time.perf_counter_ns()
    return t1 - t0, n, s == triangle(n)


def case_lifecycle_exhausted(n):
    # first next() yields, a second one ends it, then it is destroyed
    mk = one_gen
    nxt = next
    t0 = time.perf_counter_ns()
    s = 0
    ended = 0
    for i in range(n):
        g = mk(i)
        s += nxt(g)
        if nxt(g, None) is None:
            ended += 1
        del g
    t1 = time.perf_counter_ns()
    return t1 - t0, n, s == triangle(n) and ended == n


def case_baseline_call(n):
    # CPython's own floor: a plain function call per item
    s = [0]

    def cb(x):
        s[0] += x

    t0 = time.perf_counter_ns()
    for i in range(n):
        cb(i)
    t1 = time.perf_counter_ns()
    return t1 - t0, n, s[0] == triangle(n)


def measure(fn, reps):
    per = []
    for _ in range(reps):
        ns, units, ok = fn()
        if not ok:
            raise AssertionError(f"{fn.__name__ if hasattr(fn, '__name__') else fn}: wrong result")
        per.append(ns / units)
    return statistics.median(per), min(per)


def run(reps, scale):
    n = max(1000, int(ITEMS * scale))
    cases = [
        ("baseline: function call", lambda: case_baseline_call(n)),
        ("range-for / for loop", lambda: case_for(n)),
        ("next()", lambda: case_next(n)),
        ("send()", lambda: case_send(n)),
        ("throw() caught, yields again", lambda: case_throw(max(1000, n // 16))),
    ]
    for d in DEPTHS:
        # CPython pays O(depth) per item: fewer items as the chain deepens
        items = max(100, int(scale * 2_000_000 / (d + 1)))
        items = min(items, n)
        cases.append((f"yield from, depth {d}", lambda d=d, items=items: case_yield_from(d, items)))
    cases += [
        ("create + next + destroy (empty body)", lambda: case_lifecycle_empty(n)),
        ("create + next + destroy (suspended: close)", lambda: case_lifecycle_suspended(n)),
        ("create + next + next + destroy (exhausted)", lambda: case_lifecycle_exhausted(n)),
    ]
    rows = []
    for name, fn in cases:
        med, best = measure(fn, reps)
        rows.append((name, med, best))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the item counts (smaller: quicker, noisier)")
    args = ap.parse_args()

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * max(DEPTHS) + 1000))
    threading.stack_size(512 * 1024 * 1024)
    result = {}

    def body():
        try:
            result["rows"] = run(args.reps, args.scale)
        except BaseException as e:  # report it from the main thread
            result["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in result:
        print(f"FAILED: {result['error']!r}", file=sys.stderr)
        return 1

    print(f"CPython {sys.version.split()[0]}, {args.reps} repetitions; ns per item "
          "(per generator for the create cases)")
    w = max(len(r[0]) for r in result["rows"])
    print(f"{'case':<{w}} | {'median':>10} | {'best':>10}")
    print(f"{'-' * w}-|-{'-' * 10}-|-{'-' * 10}")
    for name, med, best in result["rows"]:
        print(f"{name:<{w}} | {med:>10.1f} | {best:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
