"""tulip.EventLoop from Python: the same protocol-level cases on asyncio's own loop
and on tulip's (a difference shows up as one of them failing), plus what only
tulip's loop promises: the GIL released while waiting, Ctrl-C, exact reference
counting over a million callbacks, the entry points.

Run with the package on PYTHONPATH (ctest sets it to <build>/python).
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import unittest

import tulip


class LoopCases:
    """Protocol-level cases; subclasses say which loop."""

    def new_loop(self):
        raise NotImplementedError

    def setUp(self):
        self.loop = self.new_loop()
        self.errors = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))

    def tearDown(self):
        self.loop.close()

    def run_async(self, coro, timeout=10):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def test_call_order_soon_then_timers(self):
        seen = []
        self.loop.call_later(0.002, seen.append, 'late')
        self.loop.call_later(0.001, seen.append, 'early')
        self.loop.call_soon(seen.append, 'soon')
        cancelled = self.loop.call_later(0.0015, seen.append, 'cancelled')
        cancelled.cancel()
        self.loop.call_later(0.003, self.loop.stop)
        self.loop.run_forever()
        self.assertEqual(seen, ['soon', 'early', 'late'])
        self.assertTrue(cancelled.cancelled())

    def test_handles_have_asyncio_handle_api(self):
        # tulip's are its own C types outside debug mode (as uvloop's): the
        # same methods, not the same classes.
        handle = self.loop.call_soon(lambda: None)
        timer = self.loop.call_later(1, lambda: None)
        self.assertFalse(handle.cancelled())
        self.assertAlmostEqual(timer.when(), self.loop.time() + 1, delta=0.5)
        self.assertLess(self.loop.call_at(timer.when() - 0.5, lambda: None), timer)
        handle.cancel()
        timer.cancel()
        self.assertTrue(handle.cancelled())
        self.assertTrue(timer.cancelled())
        self.assertIn('cancelled', repr(timer))

    def test_debug_mode_uses_asyncio_handles(self):
        self.loop.set_debug(True)
        handle = self.loop.call_soon(lambda: None)
        timer = self.loop.call_later(1, lambda: None)
        self.assertIsInstance(handle, asyncio.Handle)
        self.assertIsInstance(timer, asyncio.TimerHandle)
        self.assertIsNotNone(handle._source_traceback)
        timer.cancel()
        self.loop.set_debug(False)

    def test_debug_mode_reports_slow_callbacks(self):
        # slow_callback_duration 0: every callback counts as slow, so the
        # warning is certain without a callback that sleeps.
        self.loop.set_debug(True)
        self.loop.slow_callback_duration = 0.0

        async def step():
            pass

        with self.assertLogs('asyncio', level='WARNING') as logs:
            self.loop.call_soon(lambda: None)
            self.loop.call_later(0, lambda: None)
            self.loop.run_until_complete(step())
        slow = re.compile(r'WARNING:asyncio:Executing <(\w+) .*> took \d+\.\d{3} seconds')
        kinds = {match.group(1) for match in map(slow.match, logs.output) if match}
        self.assertLessEqual({'Handle', 'TimerHandle', 'Task'}, kinds, logs.output)

    def test_slow_callback_warning_only_in_debug_mode_and_over_the_limit(self):
        self.loop.set_debug(True)
        self.loop.slow_callback_duration = 3600.0
        with self.assertNoLogs('asyncio', level='WARNING'):
            self.loop.call_soon(self.loop.stop)
            self.loop.run_forever()
        self.loop.set_debug(False)
        self.loop.slow_callback_duration = 0.0
        with self.assertNoLogs('asyncio', level='WARNING'):
            self.loop.call_soon(self.loop.stop)
            self.loop.run_forever()

    def test_exception_context_names_the_handle(self):
        def fail():
            raise KeyError('k')
        handle = self.loop.call_soon(fail)
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()
        self.assertIs(self.errors[0]['handle'], handle)
        self.assertTrue(self.errors[0]['message'].startswith('Exception in callback '))

    def test_context_is_honoured(self):
        import contextvars
        variable = contextvars.ContextVar('v', default='outer')
        context = contextvars.copy_context()
        context.run(variable.set, 'inner')
        seen = []
        self.loop.call_soon(lambda: seen.append(variable.get()), context=context)
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()
        self.assertEqual(seen, ['inner'])

    def test_exception_in_callback_goes_to_handler(self):
        def fail():
            raise ZeroDivisionError('boom')
        self.loop.call_soon(fail)
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()
        self.assertEqual(len(self.errors), 1)
        self.assertIsInstance(self.errors[0]['exception'], ZeroDivisionError)

    def test_keyboard_interrupt_in_callback_propagates(self):
        def interrupt():
            raise KeyboardInterrupt
        later = []
        self.loop.call_soon(interrupt)
        self.loop.call_soon(later.append, 1)
        with self.assertRaises(KeyboardInterrupt):
            self.loop.run_forever()
        self.assertEqual(later, [])  # left for the next run, as asyncio
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()
        self.assertEqual(later, [1])

    def test_tasks_and_task_factory(self):
        made = []

        def factory(loop, coro, **kwargs):
            task = asyncio.Task(coro, loop=loop, **kwargs)
            made.append(task)
            return task

        self.loop.set_task_factory(factory)

        async def child():
            await asyncio.sleep(0)
            return asyncio.current_task()

        async def main():
            task = asyncio.ensure_future(child())
            self.assertIn(task, asyncio.all_tasks())
            return await task

        result = self.run_async(main())
        self.assertIs(result, made[-1])
        self.assertIsInstance(result, asyncio.Task)

    def test_create_task_name_context_factory_and_closed_loop(self):
        import contextvars
        var = contextvars.ContextVar('var', default='unset')
        context = contextvars.copy_context()
        context.run(var.set, 'in context')

        async def read_var():
            return var.get()

        task = self.loop.create_task(read_var(), name='named', context=context)
        self.assertIsInstance(task, asyncio.Task)
        self.assertEqual(task.get_name(), 'named')
        self.assertEqual(self.loop.run_until_complete(task), 'in context')
        coro = read_var()
        with self.assertRaises(TypeError):
            self.loop.create_task(coro, nonsense=1)
        coro.close()
        # A factory set later is used; removed again, the default comes back.
        made = []
        self.loop.set_task_factory(
            lambda loop, coro, **kwargs: made.append(coro) or asyncio.Task(coro, loop=loop, **kwargs))
        self.loop.run_until_complete(self.loop.create_task(read_var()))
        self.assertEqual(len(made), 1)
        self.loop.set_task_factory(None)
        self.loop.run_until_complete(self.loop.create_task(read_var()))
        self.assertEqual(len(made), 1)
        self.loop.close()
        coro = read_var()
        with self.assertRaisesRegex(RuntimeError, 'closed'):
            self.loop.create_task(coro)
        coro.close()

    def test_echo_with_protocol_and_buffered_protocol(self):
        received = bytearray()

        class Echo(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                assert type(data) is bytes
                self.transport.write(data)

            def eof_received(self):
                self.transport.close()

        class Collect(asyncio.BufferedProtocol):
            def __init__(self, done):
                self.buffer = bytearray(7)
                self.done = done

            def connection_made(self, transport):
                self.transport = transport
                transport.write(b'x' * 100_000)
                transport.write_eof()

            def get_buffer(self, hint):
                return self.buffer

            def buffer_updated(self, n):
                received.extend(self.buffer[:n])

            def connection_lost(self, exc):
                self.done.set_result(exc)

        async def main():
            server = await self.loop.create_server(Echo, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            done = self.loop.create_future()
            transport, _ = await self.loop.create_connection(
                lambda: Collect(done), '127.0.0.1', port)
            self.assertIsInstance(transport, asyncio.Transport)
            self.assertEqual(transport.get_extra_info('peername'), ('127.0.0.1', port))
            sock = transport.get_extra_info('socket')
            self.assertEqual(sock.gettimeout(), 0.0)
            self.assertIsNone(await done)
            server.close()
            await server.wait_closed()

        self.run_async(main())
        self.assertEqual(bytes(received), b'x' * 100_000)

    def test_protocol_exception_reaches_handler_and_closes(self):
        class Failing(asyncio.Protocol):
            def data_received(self, data):
                raise ValueError('bad data')

            def connection_lost(self, exc):
                lost.set_result(exc)

        async def main():
            server = await self.loop.create_server(Failing, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(b'hello')
            self.assertEqual(await reader.read(), b'')  # the server dropped us
            await lost
            writer.close()
            server.close()
            await server.wait_closed()

        lost = self.loop.create_future()
        self.run_async(main())
        self.assertEqual(len(self.errors), 1)
        self.assertIsInstance(self.errors[0]['exception'], ValueError)
        self.assertIn('data_received', self.errors[0]['message'])

    def test_sock_methods(self):
        async def main():
            listener = socket.socket()
            listener.bind(('127.0.0.1', 0))
            listener.listen()
            listener.setblocking(False)
            client = socket.socket()
            client.setblocking(False)
            accepted, _ = await asyncio.gather(
                self.loop.sock_accept(listener),
                self.loop.sock_connect(client, listener.getsockname()))
            conn, _ = accepted
            await self.loop.sock_sendall(client, b'ping' * 50_000)
            client.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := await self.loop.sock_recv(conn, 65536):
                got += chunk
            for s in (listener, client, conn):
                s.close()
            return bytes(got)

        self.assertEqual(self.run_async(main()), b'ping' * 50_000)

    def test_add_reader_and_remove(self):
        a, b = socket.socketpair()
        seen = []

        def on_readable():
            seen.append(a.recv(10))
            self.assertTrue(self.loop.remove_reader(a))
            self.loop.stop()

        self.loop.add_reader(a, on_readable)
        b.send(b'hi')
        self.loop.run_forever()
        self.assertEqual(seen, [b'hi'])
        self.assertFalse(self.loop.remove_reader(a))
        a.close()
        b.close()

    def test_call_soon_threadsafe_wakes_a_waiting_loop(self):
        done = self.loop.create_future()
        thread = threading.Thread(
            target=lambda: self.loop.call_soon_threadsafe(done.set_result, 'woken'))
        self.loop.call_soon(thread.start)
        self.assertEqual(self.run_async(done), 'woken')
        thread.join()

    def test_shutdown_asyncgens_and_default_executor(self):
        closed = []

        async def gen():
            try:
                yield 1
                yield 2
            finally:
                closed.append(True)

        async def main():
            agen = gen()
            await agen.__anext__()
            self.assertEqual(await self.loop.run_in_executor(None, pow, 2, 10), 1024)

        self.run_async(main())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.assertEqual(closed, [True])

    def test_subprocess_through_pipes_and_its_exit_status(self):
        async def main():
            child = await asyncio.create_subprocess_exec(
                sys.executable, '-c', 'import sys; sys.stdout.write(sys.stdin.read()[::-1]); '
                'sys.exit(7)', stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            out, _ = await child.communicate(b'tulip' * 10_000)
            shell = await asyncio.create_subprocess_shell('exit 3')
            return out, child.returncode, await shell.wait()

        self.assertEqual(self.run_async(main()), (b'pilut' * 10_000, 7, 3))

    def test_read_and_write_pipes(self):
        class Collect(asyncio.Protocol):
            def __init__(self, done):
                self.done, self.data = done, bytearray()

            def data_received(self, data):
                self.data += data

            def eof_received(self):
                self.done.set_result(bytes(self.data))

        async def main():
            r, w = os.pipe()
            done = self.loop.create_future()
            reader, _ = await self.loop.connect_read_pipe(lambda: Collect(done),
                                                          open(r, 'rb', buffering=0))
            writer, _ = await self.loop.connect_write_pipe(asyncio.BaseProtocol,
                                                           open(w, 'wb', buffering=0))
            writer.write(b'x' * 300_000)  # more than the pipe holds: buffered, then flushed
            writer.close()
            got = await done
            reader.close()
            return got

        self.assertEqual(self.run_async(main()), b'x' * 300_000)

    def test_udp_datagrams_both_ways(self):
        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)

        class Client(asyncio.DatagramProtocol):
            def __init__(self, reply):
                self.reply = reply

            def datagram_received(self, data, addr):
                self.reply.set_result((data, addr))

        async def main():
            server, _ = await self.loop.create_datagram_endpoint(Echo,
                                                                 local_addr=('127.0.0.1', 0))
            address = server.get_extra_info('sockname')
            reply = self.loop.create_future()
            client, _ = await self.loop.create_datagram_endpoint(lambda: Client(reply),
                                                                 remote_addr=address)
            client.sendto(b'ping')
            data, sender = await reply
            client.close()
            server.close()
            return data, sender == address

        self.assertEqual(self.run_async(main()), (b'PING', True))

    def test_signal_handler_runs_on_the_loop(self):
        got = []

        def on_signal(value):
            got.append(value)
            self.loop.stop()

        self.loop.add_signal_handler(signal.SIGUSR1, on_signal, 'usr1')
        self.loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        self.loop.run_forever()
        self.assertTrue(self.loop.remove_signal_handler(signal.SIGUSR1))
        self.assertEqual(got, ['usr1'])


class AsyncioLoopTest(LoopCases, unittest.TestCase):
    def new_loop(self):
        return asyncio.SelectorEventLoop()


class TulipLoopTest(LoopCases, unittest.TestCase):
    def new_loop(self):
        return tulip.new_event_loop()

    def test_gil_is_released_while_waiting(self):
        # A Python thread counts while the loop sleeps 0.2 s in the kernel: with
        # the GIL held it could not run at all.
        counter = [0]
        stop = threading.Event()

        def count():
            while not stop.is_set():
                counter[0] += 1

        thread = threading.Thread(target=count)
        self.loop.call_soon(thread.start)
        self.loop.run_until_complete(asyncio.sleep(0.2))
        stop.set()
        thread.join()
        self.assertGreater(counter[0], 10_000)

    def test_a_million_callbacks_leak_nothing(self):
        def chain(n):
            if n:
                self.loop.call_soon(chain, n - 1)
            else:
                self.loop.stop()

        def run(n):
            for _ in range(100):
                self.loop.call_later(0, lambda: None).cancel()
            self.loop.call_soon(chain, n)
            self.loop.run_forever()

        run(100_000)  # warm-up: pools and caches reach their size
        gc.collect()
        tracemalloc.start()
        before_traced = tracemalloc.get_traced_memory()[0]
        before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run(1_000_000)
        gc.collect()
        after_traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        after_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.assertLess(after_traced - before_traced, 64 * 1024)
        self.assertLess(after_rss - before_rss, 8 * 1024)  # KiB
        self.assertEqual(self.loop._core.pending_counts(), (0, 0))

    def test_ctrl_c_interrupts_a_waiting_loop(self):
        code = ('import asyncio, os, signal, sys, tulip\n'
                'async def main():\n'
                '    asyncio.get_running_loop().call_later(0.1, os.kill, os.getpid(), '
                'signal.SIGINT)\n'
                '    await asyncio.sleep(30)\n'
                'try:\n'
                '    tulip.run(main())\n'
                'except KeyboardInterrupt:\n'
                '    print("interrupted")\n')
        started = time.monotonic()
        result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                                timeout=20)
        self.assertEqual(result.stdout, 'interrupted\n', result.stderr)
        self.assertLess(time.monotonic() - started, 10)


class EntryPointTest(unittest.TestCase):
    def test_run_install_and_policy(self):
        async def which():
            return type(asyncio.get_running_loop())

        self.assertIs(tulip.run(which()), tulip.EventLoop)
        previous = asyncio.get_event_loop_policy()
        try:
            tulip.install()
            self.assertIsInstance(asyncio.get_event_loop_policy(), tulip.EventLoopPolicy)
            self.assertIs(asyncio.run(which()), tulip.EventLoop)
        finally:
            asyncio.set_event_loop_policy(previous)
        loop = tulip.new_event_loop()
        self.assertIsInstance(loop, asyncio.AbstractEventLoop)
        loop.close()

    def test_python_m_tulip_passes_argv(self):
        code = ('import asyncio, sys\n'
                'async def main():\n'
                '    print(type(asyncio.get_running_loop()).__module__, sys.argv[1:])\n'
                'asyncio.run(main())\n')
        import tempfile
        with tempfile.TemporaryDirectory() as directory:
            script = os.path.join(directory, 'script.py')
            with open(script, 'w') as out:
                out.write(code)
            result = subprocess.run([sys.executable, '-m', 'tulip', script, 'a', 'b'],
                                    capture_output=True, text=True, timeout=20)
        self.assertEqual(result.stdout, "tulip._loop ['a', 'b']\n", result.stderr)


if __name__ == '__main__':
    unittest.main()
