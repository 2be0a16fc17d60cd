#!/usr/bin/env python3
"""The CPython peers of process_bench: asyncio (and uvloop) spawning and pipes.

    python3 bench/process/process_bench.py [--seconds S] [--mib N] [--uvloop]

spawn: create_subprocess_exec("/bin/true") then wait(), one after another,
for S seconds (default 3): spawns per second.
pipe: `head -c N MiB /dev/zero` (default 1024) with stdout=PIPE, read in
256 KiB chunks until EOF: MiB/s. Beside it, the same producer piped into
`cat > /dev/null` by the shell: what a plain reader of the same pipe does.
--uvloop runs the same on uvloop (Debian's python3-uvloop: /usr/bin/python3).
"""
import argparse
import asyncio
import subprocess
import sys
import time


async def spawn(seconds):
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        p = await asyncio.create_subprocess_exec("/bin/true")
        if await p.wait() != 0:
            raise RuntimeError("/bin/true failed")
        n += 1
    return n / (time.perf_counter() - t0)


async def pipe(mib):
    t0 = time.perf_counter()
    p = await asyncio.create_subprocess_exec("head", "-c", str(mib << 20), "/dev/zero",
                                             stdout=asyncio.subprocess.PIPE)
    total = 0
    while True:
        chunk = await p.stdout.read(256 * 1024)
        if not chunk:
            break
        total += len(chunk)
    await p.wait()
    if total != mib << 20:
        raise RuntimeError(f"read {total} bytes, expected {mib << 20}")
    return mib / (time.perf_counter() - t0)


def cat(mib):
    t0 = time.perf_counter()
    subprocess.run(f"head -c {mib << 20} /dev/zero | cat > /dev/null", shell=True, check=True)
    return mib / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    name = "asyncio"
    if args.uvloop:
        import uvloop
        uvloop.install()
        name = "uvloop"
    print(f"{name} {sys.version.split()[0]}: spawn+wait /bin/true {asyncio.run(spawn(args.seconds)):.0f}/s")
    print(f"{name}: pipe read {asyncio.run(pipe(args.mib)):.0f} MiB/s")
    print(f"cat: pipe read {cat(args.mib):.0f} MiB/s")


if __name__ == "__main__":
    main()
