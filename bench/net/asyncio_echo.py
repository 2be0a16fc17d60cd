"""The CPython peers for the echo benchmark.

    python3 asyncio_echo.py PORT streams|protocol [--uvloop] [--tls CERT KEY]

Binds 127.0.0.1; stops on SIGINT/SIGTERM. --uvloop runs the same server on
uvloop (Debian's python3-uvloop, so run it with /usr/bin/python3). --tls
serves TLS with the ssl module (the uvloop/asyncio TLS peers).
"""
import asyncio
import signal
import socket
import sys


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)


async def echo_stream(reader, writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port, mode, tls):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    if mode == "streams":
        server = await asyncio.start_server(echo_stream, "127.0.0.1", port, ssl=tls)
    else:
        server = await loop.create_server(EchoProtocol, "127.0.0.1", port, ssl=tls)
    async with server:
        await stop


if __name__ == "__main__":
    port = int(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "protocol"
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    tls = None
    if "--tls" in sys.argv:
        import ssl
        i = sys.argv.index("--tls")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
    asyncio.run(main(port, mode, tls))
