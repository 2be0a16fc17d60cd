"""CPython asyncio on the cases of bench/threads_bench.cpp.

    python3 bench/threads_bench.py
"""
import asyncio
import threading
import time


def call_soon_threadsafe_round_trip(n=20_000):
    loop = asyncio.new_event_loop()
    done = threading.Event()
    result = {}

    def client():
        ev = threading.Event()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            ev.clear()
            loop.call_soon_threadsafe(ev.set)
            ev.wait()
        result["ns"] = (time.perf_counter_ns() - t0) / n
        loop.call_soon_threadsafe(loop.stop)
        done.set()

    t = threading.Thread(target=client)
    t.start()
    loop.run_forever()
    t.join()
    loop.close()
    return result["ns"]


def to_thread_round_trip(n=20_000):
    async def main():
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await asyncio.to_thread(int)
        return (time.perf_counter_ns() - t0) / n
    return asyncio.run(main())


def main():
    best = lambda f: min(f() for _ in range(3))
    print(f"{'call_soon_threadsafe round trip':40s} {best(call_soon_threadsafe_round_trip):10.0f} ns")
    print(f"{'to_thread round trip':40s} {best(to_thread_round_trip):10.0f} ns")


if __name__ == "__main__":
    main()
