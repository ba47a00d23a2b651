"""The seed's client workload, repeated: connect, send 12 bytes, read the echo, close.

One connection at a time, as fast as the loop allows, for --duration seconds;
prints "conns=N seconds=T conns_per_s=R". Runs on asyncio, uvloop or tulip.

Usage: python3 py_churn_client.py [--loop asyncio|uvloop|tulip] [--host H] [--port P] [--duration S]
"""
import argparse
import asyncio
import time

MESSAGE = b"Hello World!"


class SeedClientProtocol(asyncio.Protocol):
    def __init__(self, done):
        self.done = done
        self.received = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(MESSAGE)

    def data_received(self, data):
        self.received += len(data)
        if self.received >= len(MESSAGE):
            self.transport.close()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.received)


async def churn(host, port, duration):
    loop = asyncio.get_running_loop()
    count = 0
    start = time.monotonic()
    deadline = start + duration
    while time.monotonic() < deadline:
        done = loop.create_future()
        await loop.create_connection(lambda: SeedClientProtocol(done), host, port)
        if await done != len(MESSAGE):
            raise SystemExit("py_churn_client: short echo")
        count += 1
    elapsed = time.monotonic() - start
    print(f"conns={count} seconds={elapsed:.4f} conns_per_s={count / elapsed:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "tulip"), default="asyncio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    elif args.loop == "tulip":
        import tulip  # PYTHONPATH=<build>/python, or the installed package

        tulip.install()
    asyncio.run(churn(args.host, args.port, args.duration))


if __name__ == "__main__":
    main()
