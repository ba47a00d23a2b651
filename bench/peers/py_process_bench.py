#!/usr/bin/env python3
"""asyncio's and uvloop's side of the process benchmarks
(bench/run-process-peers.sh): the workloads of tulip-bench-process, with
create_subprocess_exec and run_in_executor. One line of key=value pairs.

    py_process_bench.py --loop asyncio|uvloop --mode spawn --count N
    py_process_bench.py --loop asyncio|uvloop --mode cat --bytes B
    py_process_bench.py --loop asyncio|uvloop --mode executor --count N
"""
import argparse
import asyncio
import resource
import time


def cpu_seconds():
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


async def spawn(count):
    start = time.perf_counter()
    for _ in range(count):
        process = await asyncio.create_subprocess_exec("/bin/true")
        await process.wait()
    elapsed = time.perf_counter() - start
    print(f"procs_per_s={count / elapsed:.0f} us_per_proc={elapsed / count * 1e6:.1f}")


async def cat(total):
    chunk = b"x" * (1 << 18)
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def feed():
        sent = 0
        while sent < total:
            piece = chunk if total - sent >= len(chunk) else chunk[:total - sent]
            process.stdin.write(piece)
            sent += len(piece)
            await process.stdin.drain()
        process.stdin.close()

    async def drain_output():
        received = 0
        while True:
            data = await process.stdout.read(1 << 18)
            if not data:
                return received
            received += len(data)

    _, received = await asyncio.gather(feed(), drain_output())
    await process.wait()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_before
    if received != total:
        raise SystemExit(f"cat: {received} bytes came back of {total}")
    print(f"gb_per_s={total / elapsed / 1e9:.3f} cpu_us_per_mib={cpu / (total / (1 << 20)) * 1e6:.1f}")


async def executor(count):
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, lambda: None)  # the pool's first thread
    start = time.perf_counter()
    for _ in range(count):
        await loop.run_in_executor(None, lambda: None)
    elapsed = time.perf_counter() - start
    print(f"round_trips_per_s={count / elapsed:.0f} us_per_round_trip={elapsed / count * 1e6:.2f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--mode", choices=["spawn", "cat", "executor"], required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--bytes", type=int, default=1 << 30)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    work = {"spawn": lambda: spawn(args.count), "cat": lambda: cat(args.bytes),
            "executor": lambda: executor(args.count)}[args.mode]
    asyncio.run(work())


if __name__ == "__main__":
    main()
