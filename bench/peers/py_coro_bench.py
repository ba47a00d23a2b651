"""Coroutine microbenchmarks for asyncio, uvloop and tulip's Python loop, the peers of bench/coro_bench.cpp.

Task created and run to completion (batches of 1000), await of a done future,
an `await asyncio.sleep(0)` chain with the call_soon chain beside it (the
sleep(0) step's floor on the same loop), Queue put/get ping-pong between two
tasks, and await of a coroutine that returns at once. Prints
"bench=<name> items_per_s=<rate>" per case, rates per second of CPU time (as
Google Benchmark reports them for tulip).

Usage: python3 py_coro_bench.py [--loop asyncio|uvloop|tulip] [--scale F]
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


async def call_soon_chain(steps):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    remaining = [steps]

    def step():
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)
        else:
            loop.call_soon(step)

    start = time.process_time()
    loop.call_soon(step)
    await done
    return steps / (time.process_time() - start)


async def leaf_value():
    return 1


async def await_inline(count):
    total = 0
    start = time.process_time()
    for _ in range(count):
        total += await leaf_value()
    return count / (time.process_time() - start)


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
    n = lambda base: max(1, int(base * scale))
    results = {
        "task_create_and_run": await task_create_and_run(n(200)),
        "await_done_future": await await_done_future(n(1_000_000)),
        "sleep_zero_chain": await sleep_zero_chain(n(200_000)),
        "call_soon_chain": await call_soon_chain(n(300_000)),
        "queue_ping_pong": await queue_ping_pong(n(100_000)),
        "await_inline": await await_inline(n(1_000_000)),
    }
    for name, rate in results.items():
        print(f"bench={name} items_per_s={rate:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "tulip"], default="asyncio")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    elif args.loop == "tulip":
        import tulip  # PYTHONPATH=<build>/python, or the installed package

        tulip.install()
    asyncio.run(main(args.scale))
