"""asyncio echo server, Protocol-based, for the benchmark (runs on asyncio, uvloop or tulip).

Echoes every byte with TCP_NODELAY and keeps each connection open until the
peer closes it; pauses reading while the write buffer is over its high-water
mark (flow control).

With --cert and --key it serves TLS (ssl= on create_server), its context set
up as tulip's: TLS 1.2 or newer, no renegotiation (Python's default), the
default cipher lists.

Usage: python3 py_echo_server.py [--loop asyncio|uvloop|tulip] [--host H] [--port P] [--backlog N]
                                 [--cert FILE --key FILE]
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


async def serve(host, port, backlog, context=None):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, host, port, backlog=backlog, ssl=context)
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "tulip"), default="asyncio")
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
    asyncio.run(serve(args.host, args.port, args.backlog, context))


if __name__ == "__main__":
    main()
