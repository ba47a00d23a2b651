"""asyncio echo server for the benchmark (runs on asyncio, uvloop or tulip).

Echoes every byte with TCP_NODELAY and keeps each connection open until the
peer closes it. By default an asyncio.Protocol that pauses reading while the
write buffer is over its high-water mark (flow control). --streams: the same
server on asyncio's streams (asyncio.start_server), one coroutine per
connection doing read(256 KiB) -> write -> drain, the shape of uvloop's own
"streams" echo benchmark; drain() is the flow control there.

With --cert and --key it serves TLS (ssl= on create_server), its context set
up as tulip's: TLS 1.2 or newer, no renegotiation (Python's default), the
default cipher lists.

Usage: python3 py_echo_server.py [--loop asyncio|uvloop|tulip] [--streams] [--host H]
                                 [--port P] [--backlog N] [--cert FILE --key FILE]
"""
import argparse
import asyncio
import signal
import socket
import ssl


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


# The most one read takes: what asyncio's transport reads from the socket at
# once (its max_size), and the read size of the benchmark's other streams and
# coroutine servers.
READ_SIZE = 256 * 1024


async def echo_stream(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass  # the peer reset the connection: nothing left to echo
    finally:
        writer.close()


async def serve(host, port, backlog, streams, context=None):
    loop = asyncio.get_running_loop()
    if streams:
        server = await asyncio.start_server(echo_stream, host, port, backlog=backlog,
                                            ssl=context)
    else:
        server = await loop.create_server(EchoProtocol, host, port, backlog=backlog,
                                          ssl=context)
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "tulip"), default="asyncio")
    parser.add_argument("--streams", action="store_true",
                        help="asyncio.start_server with read/write/drain instead of a Protocol")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    elif args.loop == "tulip":
        # tulip's Python package: from the build tree (PYTHONPATH=<build>/python)
        # or installed with `cmake --install <build> --component python`.
        import tulip

        tulip.install()
    asyncio.run(serve(args.host, args.port, args.backlog, args.streams, context))


if __name__ == "__main__":
    main()
