#!/usr/bin/python3
"""An asyncio echo server that tulip-soak can start with --server, to compare
Python's memory over a soak with tulip-echo-server's (docs/soak.md).

It takes the arguments the soak gives its server (--port 0 --keep-open --quiet
--backlog N, and with --tls: --tls --cert FILE --key FILE), prints asyncio's
"Serving on ('127.0.0.1', P)" first on stderr as tulip-echo-server does, echoes
every byte with backpressure until the peer closes, and exits 0 on SIGTERM.
With --loop uvloop (through the soak's --server-arg) it runs on uvloop.
Anything it prints after the first line counts as an error in the soak.
"""
import argparse
import asyncio
import signal
import ssl
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()


async def serve(args, context):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", args.port, backlog=args.backlog,
                                      ssl=context)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"Serving on ('{host}', {port})", file=sys.stderr, flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    async with server:
        await stop


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backlog", type=int, default=100)
    parser.add_argument("--keep-open", action="store_true", help="always on")
    parser.add_argument("--quiet", action="store_true", help="always on")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    context = None
    if args.tls:
        # As tulip's server context: TLS 1.2 or newer, Python's defaults otherwise.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(serve(args, context))


if __name__ == "__main__":
    main()
