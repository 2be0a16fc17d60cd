"""CPython asyncio on the cases of bench/async_bench.cpp.

    python3 bench/async_bench.py

Prints ns per item for each case (best of a few runs), and memory per
suspended task and per timer via tracemalloc.

    python3 bench/async_bench.py combinators

runs only the 10^6-awaitable cases of gather, wait and as_completed, and
gives CPU time beside wall time (Google Benchmark's two columns), as
these take seconds each and a shared machine stretches the wall time.
"""
import asyncio
import gc
import sys
import time
import tracemalloc

sys.setrecursionlimit(20000)


def best_ns_per_item(fn, items, runs=3):
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / items)
    return best


def best_cpu_and_wall_ns_per_item(fn, items, runs=3):
    best_cpu = best_wall = float("inf")
    for _ in range(runs):
        gc.collect()
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        fn()
        best_cpu = min(best_cpu, (time.process_time_ns() - c0) / items)
        best_wall = min(best_wall, (time.perf_counter_ns() - t0) / items)
    return best_cpu, best_wall


async def trivial(i):
    return i


def task_spawn_join(n=200_000):
    async def main():
        s = 0
        for _ in range(n):
            s += await asyncio.create_task(trivial(1))
        assert s == n
    return lambda: asyncio.run(main()), n


def million_tasks(n=1_000_000):
    async def main():
        tasks = [asyncio.create_task(trivial(1)) for _ in range(n)]
        s = 0
        for t in tasks:
            s += await t
        assert s == n
    return lambda: asyncio.run(main()), n


def sleep0_switch(ntasks, per_task=20_000):
    async def worker(counter):
        for _ in range(per_task):
            await asyncio.sleep(0)
            counter[0] += 1

    async def main():
        counter = [0]
        await asyncio.gather(*(worker(counter) for _ in range(ntasks)))
        assert counter[0] == ntasks * per_task
    return lambda: asyncio.run(main()), ntasks * per_task


def future_ping_pong(rounds=50_000):
    async def main():
        loop = asyncio.get_running_loop()
        box = {"ping": loop.create_future(), "pong": loop.create_future()}

        async def a():
            s = 0
            for i in range(rounds):
                box["ping"].set_result(i)
                s += await box["pong"]
                box["pong"] = loop.create_future()
            return s

        async def b():
            s = 0
            for i in range(rounds):
                s += await box["ping"]
                box["ping"] = loop.create_future()
                box["pong"].set_result(i)
            return s

        tb = asyncio.create_task(b())
        ta = asyncio.create_task(a())
        assert await ta + await tb == 2 * (rounds * (rounds - 1) // 2)
    return lambda: asyncio.run(main()), rounds


def sleep0_await_chain(depth, switches=50_000):
    async def chain(d):
        if d <= 1:
            for _ in range(switches):
                await asyncio.sleep(0)
            return switches
        return await chain(d - 1)

    def run():
        assert asyncio.run(chain(depth)) == switches
    return run, switches


def bytes_per_suspended_task(n=200_000):
    async def parked(gate):
        await gate

    async def main():
        gate = asyncio.get_running_loop().create_future()
        tracemalloc.start()
        b0 = tracemalloc.get_traced_memory()[0]
        tasks = [asyncio.create_task(parked(gate)) for _ in range(n)]
        await asyncio.sleep(0)
        b1 = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        gate.set_result(None)
        await asyncio.gather(*tasks)
        return (b1 - b0) / n
    return asyncio.run(main())


def call_later_cancel(n=1_000_000):
    def run():
        loop = asyncio.new_event_loop()
        try:
            hs = [loop.call_later(1 + i * 1e-6, lambda: None) for i in range(n)]
            for h in hs:
                h.cancel()
            hs = None
            loop.call_soon(loop.stop)
            loop.run_forever()
        finally:
            loop.close()
    return run, n


def gather_million(n=1_000_000):
    async def main():
        r = await asyncio.gather(*(trivial(1) for _ in range(n)))
        assert sum(r) == n
    return lambda: asyncio.run(main()), n


def gather_million_futures_twice(n=1_000_000):
    async def main():
        loop = asyncio.get_running_loop()
        fs = [loop.create_future() for _ in range(n)]
        g = asyncio.gather(*fs, *fs)
        for f in fs:
            f.set_result(1)
        r = await g
        assert sum(r) == 2 * n
    return lambda: asyncio.run(main()), n


def wait_million(n=1_000_000):
    async def main():
        tasks = [asyncio.create_task(trivial(1)) for _ in range(n)]
        done, pending = await asyncio.wait(tasks)
        assert not pending and sum(t.result() for t in done) == n
    return lambda: asyncio.run(main()), n


def as_completed_million(n=1_000_000):
    async def main():
        tasks = [asyncio.create_task(trivial(1)) for _ in range(n)]
        s = 0
        for c in asyncio.as_completed(tasks):
            s += await c
        assert s == n
    return lambda: asyncio.run(main()), n


def combinators():
    print(f"CPython {sys.version.split()[0]} asyncio: 10^6 awaitables, best of 2")
    rows = [
        ("gather of 1,000,000 coroutines, per one", gather_million()),
        ("gather of 1,000,000 futures twice, per future", gather_million_futures_twice()),
        ("wait on 1,000,000 tasks, per task", wait_million()),
        ("as_completed of 1,000,000 tasks, per task", as_completed_million()),
    ]
    for name, (fn, items) in rows:
        cpu, wall = best_cpu_and_wall_ns_per_item(fn, items, runs=2)
        print(f"{name:50s} {cpu:10.1f} ns CPU {wall:10.1f} ns wall", flush=True)


def main():
    if sys.argv[1:] == ["combinators"]:
        combinators()
        return
    print(f"CPython {sys.version.split()[0]} asyncio")
    rows = [
        ("task spawn+join", task_spawn_join()),
        ("1,000,000 tasks, per task", million_tasks()),
        ("sleep(0) switch, 1 task", sleep0_switch(1)),
        ("sleep(0) switch, 2 tasks", sleep0_switch(2)),
        ("sleep(0) switch, 100 tasks", sleep0_switch(100, 2000)),
        ("future ping-pong, per round trip", future_ping_pong()),
        ("sleep(0) at await depth 1", sleep0_await_chain(1)),
        ("sleep(0) at await depth 10", sleep0_await_chain(10)),
        ("sleep(0) at await depth 100", sleep0_await_chain(100)),
        ("sleep(0) at await depth 1000", sleep0_await_chain(1000, 10_000)),
        ("1,000,000 call_later + cancel, per timer", call_later_cancel()),
    ]
    for name, (fn, items) in rows:
        print(f"{name:45s} {best_ns_per_item(fn, items, runs=2):10.1f} ns")
    print(f"{'bytes per suspended task (tracemalloc)':45s} {bytes_per_suspended_task():10.1f} B")
    combinators()


if __name__ == "__main__":
    main()
