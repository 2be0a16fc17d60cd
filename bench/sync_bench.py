"""CPython asyncio on the cases of bench/sync_bench.cpp.

    python3 bench/sync_bench.py

Prints ns per item for each case (best of a few runs). Each case checks its
own result (assert), as the C++ benchmarks do.
"""
import asyncio
import gc
import time


def best_ns_per_item(fn, items, runs=3):
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, (time.perf_counter_ns() - t0) / items)
    return best


def lock_uncontended(n=200_000):
    async def main():
        lock = asyncio.Lock()
        held = 0
        for _ in range(n):
            await lock.acquire()
            if lock.locked():
                held += 1
            lock.release()
        assert held == n
    return lambda: asyncio.run(main()), n


def lock_contended(tasks=4, per_task=20_000):
    async def main():
        lock = asyncio.Lock()
        state = {"inside": 0, "held": 0}

        async def worker():
            for _ in range(per_task):
                await lock.acquire()
                state["inside"] += 1
                if state["inside"] == 1:
                    state["held"] += 1
                await asyncio.sleep(0)
                state["inside"] -= 1
                lock.release()

        await asyncio.gather(*(worker() for _ in range(tasks)))
        assert state["held"] == tasks * per_task
    return lambda: asyncio.run(main()), tasks * per_task


def event_wake(waiters=10_000, runs=3):
    # Only set() and the waiters resuming are timed, as in the C++ case.
    best = float("inf")
    for _ in range(runs):
        async def main():
            ev = asyncio.Event()
            woke = [0]

            async def waiter():
                await ev.wait()
                woke[0] += 1

            ts = [asyncio.create_task(waiter()) for _ in range(waiters)]
            await asyncio.sleep(0)
            t0 = time.perf_counter_ns()
            ev.set()
            for t in ts:
                await t
            dt = time.perf_counter_ns() - t0
            assert woke[0] == waiters
            return dt
        gc.collect()
        best = min(best, asyncio.run(main()) / waiters)
    return best


def queue_throughput(producers, total=200_000):
    async def main():
        q = asyncio.Queue(100)
        per = total // producers
        acc = [0]

        async def producer():
            for i in range(per):
                await q.put(i)

        async def consumer():
            for _ in range(total):
                acc[0] += await q.get()

        c = asyncio.create_task(consumer())
        await asyncio.gather(*(producer() for _ in range(producers)))
        await c
        assert acc[0] == producers * (per * (per - 1) // 2)
    return lambda: asyncio.run(main()), total


def queue_ping_pong(rounds=100_000):
    async def main():
        ping = asyncio.Queue(1)
        pong = asyncio.Queue(1)

        async def a():
            s = 0
            for i in range(rounds):
                await ping.put(i)
                s += await pong.get()
            return s

        async def b():
            s = 0
            for _ in range(rounds):
                v = await ping.get()
                s += v
                await pong.put(v)
            return s

        tb = asyncio.create_task(b())
        ta = asyncio.create_task(a())
        total = await ta + await tb
        assert total == 2 * (rounds * (rounds - 1) // 2)
    return lambda: asyncio.run(main()), rounds


def main():
    import sys
    print(f"CPython {sys.version.split()[0]}, ns per item (best of 3)")
    cases = [
        ("lock acquire+release, uncontended", lock_uncontended()),
        ("lock acquire+release, 4 tasks contended (per acquisition)", lock_contended()),
        ("queue throughput, 1 producer (per item)", queue_throughput(1)),
        ("queue throughput, 4 producers (per item)", queue_throughput(4)),
        ("queue ping-pong (per round trip)", queue_ping_pong()),
    ]
    for name, (fn, items) in cases:
        print(f"{name:60s} {best_ns_per_item(fn, items):10.1f}")
    print(f"{'event set() waking 10,000 waiters (per waiter)':60s} {event_wake():10.1f}")


if __name__ == "__main__":
    main()
