#!/usr/bin/env python3
"""Runs the HTTP server example and hits it with curl and wrk.

    test_http_server.py SERVER_BINARY

Starts the server on a free port (it prints the port), checks the body curl
gets, a malformed request's 400, a short wrk run without errors, and a clean
exit on SIGTERM. Exit status 0 on success, 77 (skipped) if curl or wrk is not
installed, 1 with the reason otherwise.
"""
import re
import shutil
import signal
import socket
import subprocess
import sys

WRK_SECONDS = 2


def fail(message):
    print(f"FAILED: {message}")
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for tool in ("curl", "wrk"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} is not installed (scripts/install-deps.sh installs it)")
            return 77
    server = subprocess.Popen([sys.argv[1], "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # bounded by ctest's timeout if the server hangs
        match = re.match(r"listening on [\d.]+:(\d+)", line)
        if not match:
            fail(f"the server did not say where it listens: {line!r}")
        port = int(match.group(1))
        url = f"http://127.0.0.1:{port}/"

        body = subprocess.run(["curl", "-sS", "--max-time", "10", url, url], check=True,
                              capture_output=True, text=True).stdout
        if body != "Hello from tulip!\n" * 2:
            fail(f"curl got {body!r}")

        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"NONSENSE\r\n\r\n")
            reply = b""
            while chunk := raw.recv(4096):
                reply += chunk
        if not reply.startswith(b"HTTP/1.1 400 ") or b"malformed request line" not in reply:
            fail(f"a malformed request got {reply!r}")

        wrk = subprocess.run(["wrk", "-t1", "-c8", f"-d{WRK_SECONDS}s", url], capture_output=True,
                             text=True, timeout=WRK_SECONDS + 30)
        print(wrk.stdout)
        if wrk.returncode != 0:
            fail(f"wrk exited with {wrk.returncode}: {wrk.stderr}")
        if "Socket errors" in wrk.stdout or "Non-2xx" in wrk.stdout:
            fail("wrk reports errors")
        requests = re.search(r"(\d+) requests in", wrk.stdout)
        if not requests or int(requests.group(1)) == 0:
            fail("wrk made no requests")

        server.send_signal(signal.SIGTERM)
        if server.wait(timeout=10) != 0:
            fail(f"the server exited with {server.returncode} on SIGTERM")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    print("http_server: curl, a malformed request and wrk all answered correctly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
