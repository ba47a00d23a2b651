"""Loop-overhead microbenchmarks for asyncio, uvloop and tulip's Python loop, the peers of bench/loop_bench.cpp.

Chained call_soon, a batch of call_soon, due timers fired (call_at in the past,
shuffled), call_later then cancel, and a future resolved with a done callback.
Prints "bench=<name> items_per_s=<rate>" per case, rates per second of CPU time
(as Google Benchmark reports them for tulip and Asio).

Usage: python3 py_loop_bench.py [--loop asyncio|uvloop|tulip] [--scale F]
"""
import argparse
import asyncio
import time


def call_soon_chain(loop, steps):
    remaining = [steps]

    def step():
        remaining[0] -= 1
        if remaining[0] == 0:
            loop.stop()
        else:
            loop.call_soon(step)

    start = time.process_time()
    loop.call_soon(step)
    loop.run_forever()
    return steps / (time.process_time() - start)


def call_soon_batch(loop, rounds, batch=1000):
    noop = lambda: None
    start = time.process_time()
    for _ in range(rounds):
        for _ in range(batch):
            loop.call_soon(noop)
        loop.call_soon(loop.stop)
        loop.run_forever()
    return rounds * batch / (time.process_time() - start)


def timers_fired(loop, rounds, count=1000):
    noop = lambda: None
    start = time.process_time()
    for _ in range(rounds):
        base = loop.time() - 1.0
        for i in range(count):
            loop.call_at(base - ((i * 7919) % count) * 1e-6, noop)
        loop.call_soon(loop.stop)
        loop.run_forever()
    return rounds * count / (time.process_time() - start)


def schedule_cancel(loop, count):
    noop = lambda: None
    start = time.process_time()
    for i in range(count):
        loop.call_later(30.0, noop).cancel()
        if i % 1024 == 1023:
            loop.call_soon(loop.stop)
            loop.run_forever()
    return count / (time.process_time() - start)


def future_callback(loop, rounds, batch=1000):
    total = [0]

    def on_done(future):
        total[0] += future.result()

    start = time.process_time()
    for _ in range(rounds):
        for _ in range(batch):
            future = loop.create_future()
            future.add_done_callback(on_done)
            future.set_result(1)
        loop.call_soon(loop.stop)
        loop.run_forever()
    return rounds * batch / (time.process_time() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "tulip"), default="asyncio")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    elif args.loop == "tulip":
        import tulip  # PYTHONPATH=<build>/python, or the installed package

        loop = tulip.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    n = lambda base: max(1, int(base * args.scale))
    print(f"bench=call_soon_chain items_per_s={call_soon_chain(loop, n(300000)):.0f}")
    print(f"bench=call_soon_batch items_per_s={call_soon_batch(loop, n(300)):.0f}")
    print(f"bench=timers_fired items_per_s={timers_fired(loop, n(100)):.0f}")
    print(f"bench=schedule_cancel items_per_s={schedule_cancel(loop, n(200000)):.0f}")
    print(f"bench=future_callback items_per_s={future_callback(loop, n(200)):.0f}")
    loop.close()


if __name__ == "__main__":
    main()
