"""Drives examples/echo/echo_server with a client nobody here wrote:
CPython's asyncio streams.

    python3 echo_interop.py ECHO_SERVER_BINARY [streams|protocol]

Starts the server on a free port (it prints its address), then runs 32
connections at once, each sending random blocks of up to 1 MiB and checking
the echo by its SHA-256, then half-closing (write_eof) and expecting the
server's EOF. Finally sends SIGTERM and expects exit status 0. Everything is
on 127.0.0.1 and bounded in time (60 s).
"""
import asyncio
import hashlib
import os
import random
import re
import signal
import subprocess
import sys

CONNECTIONS = 32
ROUNDS = 4


async def one_client(port, seed):
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(ROUNDS):
        size = rnd.choice([1, 17, 4096, 65536, rnd.randint(1, 1 << 20)])
        block = rnd.randbytes(size)
        writer.write(block)
        await writer.drain()
        echoed = await reader.readexactly(size)
        if hashlib.sha256(echoed).digest() != hashlib.sha256(block).digest():
            raise AssertionError(f"client {seed}: echo of {size} bytes differs")
    writer.write_eof()
    rest = await reader.read()
    if rest:
        raise AssertionError(f"client {seed}: {len(rest)} unexpected bytes after EOF")
    writer.close()
    await writer.wait_closed()
    return True


async def run_clients(port):
    results = await asyncio.wait_for(
        asyncio.gather(*(one_client(port, s) for s in range(CONNECTIONS))), 60)
    return all(results)


def main():
    binary = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "protocol"
    proc = subprocess.Popen([binary, "0", mode], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"'127\.0\.0\.1', (\d+)\)", line)
        if not m:
            print(f"echo_interop: unexpected first line {line!r}", file=sys.stderr)
            return 1
        port = int(m.group(1))
        ok = asyncio.run(run_clients(port))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        if rc != 0:
            print(f"echo_interop: server exited with {rc}", file=sys.stderr)
            return 1
        print(f"echo_interop: {CONNECTIONS} clients x {ROUNDS} blocks echoed ({mode}); server stopped cleanly")
        return 0 if ok else 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
