"""Coroutine microbenchmarks for asyncio and uvloop, the peers of bench/coro_bench.cpp.

Task created and run to completion (batches of 1000), await of a done future,
an `await asyncio.sleep(0)` chain, and Queue put/get ping-pong between two
tasks. Prints "bench=<name> items_per_s=<rate>" per case, rates per second of
CPU time (as Google Benchmark reports them for tulip).

Usage: python3 py_coro_bench.py [--loop asyncio|uvloop] [--scale F]
"""
import argparse
import asyncio
import time


async def trivial():
    return 1


async def task_create_and_run(rounds, batch=1000):
    loop = asyncio.get_running_loop()
    start = time.process_time()
    for _ in range(rounds):
        tasks = [loop.create_task(trivial()) for _ in range(batch)]
        for task in tasks:
            await task
    return rounds * batch / (time.process_time() - start)


async def await_done_future(count):
    future = asyncio.get_running_loop().create_future()
    future.set_result(1)
    total = 0
    start = time.process_time()
    for _ in range(count):
        total += await future
    return count / (time.process_time() - start)


async def sleep_zero_chain(steps):
    start = time.process_time()
    for _ in range(steps):
        await asyncio.sleep(0)
    return steps / (time.process_time() - start)


async def queue_ping_pong(rounds):
    there, back = asyncio.Queue(), asyncio.Queue()

    async def ping():
        for i in range(rounds):
            await there.put(i)
            await back.get()

    async def pong():
        for _ in range(rounds):
            await back.put(await there.get())

    start = time.process_time()
    await asyncio.gather(ping(), pong())
    return rounds / (time.process_time() - start)


async def main(scale):
    results = {
        "task_create_and_run": await task_create_and_run(int(200 * scale)),
        "await_done_future": await await_done_future(int(1_000_000 * scale)),
        "sleep_zero_chain": await sleep_zero_chain(int(200_000 * scale)),
        "queue_ping_pong": await queue_ping_pong(int(100_000 * scale)),
    }
    for name, rate in results.items():
        print(f"bench={name} items_per_s={rate:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main(args.scale))
