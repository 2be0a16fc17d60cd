"""TLS with peers nobody here wrote: drives tests/net/ssl_echo (a pyco TLS
echo server and client) against `openssl s_server` / `openssl s_client` and
CPython's asyncio with ssl (run with 3.12 when pyenv has it).

    python3 ssl_interop.py SSL_ECHO_BINARY

A self-signed certificate for localhost/127.0.0.1 is made with `openssl
req` in a temporary directory. Everything is on 127.0.0.1, every port is
picked by the OS, every step bounded in time.
"""
import asyncio
import os
import re
import ssl
import subprocess
import sys
import tempfile

TIMEOUT = 60


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2"],
                   check=True, capture_output=True, timeout=TIMEOUT)
    return cert, key


def start_pyco_server(binary, cert, key):
    p = subprocess.Popen([binary, "server", cert, key], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        p.kill()
        raise AssertionError(f"pyco server said {line!r}")
    return p, int(m.group(1))


def pyco_server_with_s_client(binary, cert, key):
    p, port = start_pyco_server(binary, cert, key)
    try:
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", cert,
                              "-verify_return_error", "-servername", "localhost", "-verify_hostname", "localhost",
                              "-quiet"],
                             input="hello from s_client\nbye\n", capture_output=True, text=True, timeout=TIMEOUT)
        assert "hello from s_client\n" in out.stdout, (out.stdout, out.stderr)
        # Python asyncio as the client, then "quit".
        asyncio.run(asyncio.wait_for(python_client(port, cert), TIMEOUT))
        assert p.wait(timeout=TIMEOUT) == 0
    finally:
        if p.poll() is None:
            p.kill()
    print("pyco server: openssl s_client and asyncio+ssl clients OK")


async def python_client(port, cert):
    ctx = ssl.create_default_context(cafile=cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    big = b"".join(os.urandom(16000).hex().encode() + b"\n" for _ in range(100))  # 3.2 MB in lines
    writer.write(b"python\n" + big)
    await writer.drain()
    assert await reader.readline() == b"python\n"
    assert await reader.readexactly(len(big)) == big
    assert writer.get_extra_info("ssl_object").version() in ("TLSv1.3", "TLSv1.2")
    writer.write(b"quit\n")
    assert await reader.readline() == b"quit\n"
    writer.close()
    await writer.wait_closed()


def pyco_client_with_s_server(binary, cert, key):
    # -naccept 1: one connection, then s_server exits.
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key,
                            "-naccept", "1", "-rev"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for _ in range(20):
            line = srv.stdout.readline()
            m = re.search(r"ACCEPT .*:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "s_server did not say its port"
        out = subprocess.run([binary, "client", str(port), cert, "rev"], capture_output=True, text=True,
                             timeout=TIMEOUT)
        assert out.returncode == 0 and out.stdout.startswith("OK TLSv1.3"), out.stdout
    finally:
        if srv.poll() is None:
            srv.kill()
        srv.wait(timeout=TIMEOUT)
    print("pyco client: openssl s_server OK")


async def python_echo_server(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)


async def pyco_client_with_python_server(binary, cert, key):
    srv = await python_echo_server(cert, key)
    port = srv.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(binary, "client", str(port), cert, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0 and out.startswith(b"OK TLSv1.3"), out
    srv.close()
    await srv.wait_closed()
    print("pyco client: asyncio+ssl server OK")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="tls-pyco-interop-") as d:
        cert, key = make_cert(d)
        pyco_server_with_s_client(binary, cert, key)
        pyco_client_with_s_server(binary, cert, key)
        asyncio.run(pyco_client_with_python_server(binary, cert, key))
    print(f"ssl interop OK (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
