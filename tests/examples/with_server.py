#!/usr/bin/env python3
"""Runs a command against a real server started on a free loopback port.

    with_server.py redis|nginx -- COMMAND [ARGS...]

Starts redis-server or nginx in a temporary directory, waits (bounded) until
its port accepts connections, runs COMMAND with TULIP_REDIS_PORT or
TULIP_NGINX_PORT and TULIP_NGINX_ROOT in its environment ("{port}" in an
argument is replaced by the port), then stops the server. Exit status: the
command's, or 77 (ctest's "skipped") if the server binary is not installed.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
STARTUP_SECONDS = 15


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def redis_command(binary, work, port):
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", work, "--logfile", os.path.join(work, "redis.log"),
            "--daemonize", "no"], {"TULIP_REDIS_PORT": str(port)}


def nginx_command(binary, work, port):
    root = os.path.join(work, "www")
    os.makedirs(root, exist_ok=True)
    temp = "".join(f"  {kind}_temp_path {work}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = os.path.join(work, "nginx.conf")
    with open(config, "w") as out:
        out.write(f"""daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
{temp}  default_type text/plain;
  gzip on;
  gzip_types text/plain;
  gzip_min_length 1;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
""")
    return [binary, "-p", work, "-e", os.path.join(work, "error.log"), "-c", config], {
        "TULIP_NGINX_PORT": str(port), "TULIP_NGINX_ROOT": root}


SERVERS = {"redis": ("redis-server", redis_command), "nginx": ("nginx", nginx_command)}


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in SERVERS or sys.argv[2] != "--":
        sys.exit(__doc__)
    name, build = SERVERS[sys.argv[1]]
    binary = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if binary is None:
        print(f"SKIPPED: {name} is not installed (scripts/install-deps.sh installs it)")
        return SKIP
    with tempfile.TemporaryDirectory(prefix=f"tulip-{sys.argv[1]}-") as work:
        for attempt in range(3):  # the free port may be taken between probe and start
            port = free_port()
            command, variables = build(binary, work, port)
            server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + STARTUP_SECONDS
            while server.poll() is None and time.monotonic() < deadline and not accepting(port):
                time.sleep(0.05)
            if server.poll() is None and accepting(port):
                break
            server.kill()
            error = server.communicate()[1].decode(errors="replace").strip()
            print(f"{name} did not start on port {port} (attempt {attempt + 1}): {error}")
        else:
            return 1
        try:
            env = dict(os.environ, **variables)
            args = [a.replace("{port}", str(port)) for a in sys.argv[3:]]
            return subprocess.call(args, env=env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
