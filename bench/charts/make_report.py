"""Turns a bench/run-peers.sh results directory into summary.md and peers.png.

Usage: python3 bench/charts/make_report.py RESULTS_DIR

Reads RESULTS_DIR/results.csv (workload,case,peer,rep,metric,value) and
RESULTS_DIR/machine.txt; writes RESULTS_DIR/summary.md (medians, min-max, every
figure also as a ratio to the epoll floor, and the issue's targets checked) and,
when gnuplot is installed, RESULTS_DIR/peers.png.
"""
import csv
import os
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict

from python_report import PYTHON_COLORS, PYTHON_TITLES, python_sections

PEERS = ["epoll", "uring", "tulip", "tulip-uring", "tulip-streams", "libuv", "libuv-plain", "asio", "asio-coro",
         "uvloop", "uvloop-streams", "asyncio", "asyncio-streams"]
TITLES = {"epoll": "epoll (floor)", "uring": "io_uring (floor)", "tulip": "tulip",
          "tulip-uring": "tulip on io_uring", "tulip-streams": "tulip streams",
          "libuv": "libuv", "libuv-plain": "libuv (plain uv_write)", "asio": "Boost.Asio",
          "asio-coro": "Boost.Asio coroutines", "uvloop": "uvloop",
          "uvloop-streams": "uvloop streams", "asyncio": "asyncio",
          "asyncio-streams": "asyncio streams"}
# In the streams workload "tulip" is the Protocol server the others are set against.
STREAMS_TITLES = {**TITLES, "tulip": "tulip Protocol (reference)"}
# The coroutine and streams servers the streams target ranks tulip's against.
STREAMS_PEERS = ["asio-coro", "uvloop-streams", "asyncio-streams"]
LOOP_CASES = ["call_soon_chain", "call_soon_batch", "timers_fired", "schedule_cancel",
              "future_callback"]
LOOP_TITLES = {"call_soon_chain": "chained call_soon (Asio: post chain; libuv: idle handle)",
               "call_soon_batch": "call_soon batch of 1000 (Asio: post)",
               "timers_fired": "due timers fired, 1000 per batch",
               "schedule_cancel": "timer scheduled then cancelled",
               "future_callback": "future resolved + done callback"}
CORO_CASES = ["task_create_and_run", "await_done_future", "sleep_zero_chain", "call_soon_chain",
              "queue_ping_pong", "await_inline"]
CORO_TITLES = {"task_create_and_run": "task created and run to completion (Asio: co_spawn)",
               "await_done_future": "co_await of a done Future",
               "sleep_zero_chain": "co_await sleep(0) chain (Asio: co_await post)",
               "call_soon_chain": "the call_soon chain beside it (Asio: post chain)",
               "queue_ping_pong": "Queue put/get ping-pong, round trips (Asio: channel)",
               "await_inline": "co_await of a coroutine that returns at once"}
COLORS = {"epoll": "#7f7f7f", "uring": "#3f3f3f", "tulip": "#d62728", "tulip-uring": "#8c564b", "tulip-streams": "#e377c2", "libuv": "#1f77b4",
          "libuv-plain": "#17becf", "asio": "#ff7f0e", "asio-coro": "#bcbd22",
          "uvloop": "#2ca02c", "uvloop-streams": "#98df8a", "asyncio": "#9467bd",
          "asyncio-streams": "#c5b0d5"}
SATURATED = 0.9  # load generator CPU share from which a case counts as capped by it


def load(directory):
    values = defaultdict(list)  # (workload, case, peer, metric) -> [float]
    cases = defaultdict(list)  # workload -> cases in first-seen order
    with open(os.path.join(directory, "results.csv")) as f:
        for row in csv.DictReader(f):
            try:
                value = float(row["value"])
            except ValueError:
                continue
            values[(row["workload"], row["case"], row["peer"], row["metric"])].append(value)
            if row["case"] not in cases[row["workload"]]:
                cases[row["workload"]].append(row["case"])
    return values, cases


def median(values, key):
    data = values.get(key)
    return statistics.median(data) if data else None


def number(x, digits=None):
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2 if abs(x) >= 1 else 3
    return f"{x:,.{digits}f}"


def ratio(x, reference):
    if x is None or not reference:
        return ""
    return f" ({x / reference:.2f}×)"


class Report:
    def __init__(self, directory):
        self.directory = directory
        self.values, self.cases = load(directory)
        self.lines = []
        self.checks = []

    def med(self, workload, case, peer, metric):
        return median(self.values, (workload, case, peer, metric))

    def spread(self, workload, case, peer, metric):
        data = self.values.get((workload, case, peer, metric))
        if not data or len(data) < 2:
            return ""
        return f" [{number(min(data))}–{number(max(data))}]"

    def peers_of(self, workload):
        present = {key[2] for key in self.values if key[0] == workload}
        return [p for p in PEERS if p in present]

    def table(self, workload, metric, header, reference="epoll", show_spread=True,
              mark_saturated=False, scale=1.0, digits=None, titles=TITLES):
        peers = self.peers_of(workload)
        if not peers:
            return
        self.lines.append(f"| {header} | " + " | ".join(titles[p] for p in peers) + " |")
        self.lines.append("|---" * (len(peers) + 1) + "|")
        for case in self.cases[workload]:
            ref = self.med(workload, case, reference, metric)
            cells = []
            for peer in peers:
                value = self.med(workload, case, peer, metric)
                if value is None:
                    cells.append("—")
                    continue
                cell = number(value * scale, digits)
                if peer != reference:
                    cell += ratio(value, ref)
                if show_spread:
                    data = self.values[(workload, case, peer, metric)]
                    if len(data) > 1:
                        cell += f" [{number(min(data) * scale, digits)}–{number(max(data) * scale, digits)}]"
                share = self.med(workload, case, peer, "loadgen_cpu_share")
                if mark_saturated and share is not None and share >= SATURATED:
                    cell += " †"
                cells.append(cell)
            self.lines.append(f"| {case} | " + " | ".join(cells) + " |")
        self.lines.append("")

    def rate_table(self, workload, cases, titles):
        """Millions per CPU-second, every peer beside tulip, with the ratio to tulip."""
        peers = self.peers_of(workload)
        if not peers:
            return
        out = self.lines
        out.append("| case | " + " | ".join(TITLES[p] for p in peers) + " |")
        out.append("|---" * (len(peers) + 1) + "|")
        for case in cases:
            ref = self.med(workload, case, "tulip", "items_per_s")
            cells = []
            for p in peers:
                v = self.med(workload, case, p, "items_per_s")
                cells.append("n/a" if v is None else
                             number(v / 1e6, 2 if v < 1e7 else 1) +
                             ("" if p == "tulip" else ratio(v, ref)))
            out.append(f"| {titles[case]} | " + " | ".join(cells) + " |")
        if workload == "coro":
            cells = []
            for p in peers:
                step = self.med(workload, "sleep_zero_chain", p, "items_per_s")
                chain = self.med(workload, "call_soon_chain", p, "items_per_s")
                cells.append(f"{chain / step:.2f}×" if step and chain else "n/a")
            out.append("| sleep(0) step / call_soon step (tulip's target: ≤ 2×) | " +
                       " | ".join(cells) + " |")
        out.append("")

    def new_sections(self):
        """The coroutine, streams and Unix-socket workloads."""
        out = self.lines
        if self.heading("coro", "## 7. Coroutine microbenchmarks (millions per CPU-second; "
                        "ratio to tulip)"):
            self.rate_table("coro", CORO_CASES, CORO_TITLES)
        if self.heading("streams", "## 8. Streams echo servers (ping-pong), beside tulip's "
                        "Protocol server", "Requests per second, and (in parentheses) the ratio to "
                        "tulip's Protocol server:"):
            self.table("streams", "req_per_s", "case", reference="tulip", mark_saturated=True,
                       titles=STREAMS_TITLES)
            out += ["Server CPU time per request (user + sys, µs; lower is better):", ""]
            self.table("streams", "server_cpu_us_per_req", "case", reference="tulip",
                       show_spread=False, digits=2, titles=STREAMS_TITLES)
        if self.heading("unix", "## 9. Echo over a Unix stream socket (ping-pong)",
                        "Requests per second:"):
            self.table("unix", "req_per_s", "case", mark_saturated=True)
            out += ["Server CPU time per request (user + sys, µs; lower is better):", ""]
            self.table("unix", "server_cpu_us_per_req", "case", show_spread=False, digits=2)
        if self.heading("threads", "## 14. A loop per core: tulip --threads N against N epoll "
                        "floors on one port (SO_REUSEPORT), N load generators",
                        "Requests per second, summed over the load generators:"):
            self.table("threads", "req_per_s", "case", mark_saturated=True)
            out += ["Server CPU time per request (user + sys, µs; the floor's only at N = 1):", ""]
            self.table("threads", "server_cpu_us_per_req", "case", show_spread=False, digits=2)

    def heading(self, workload, *lines):
        """Opens a section when `workload` was measured; false (and nothing written) if not."""
        if not self.peers_of(workload):
            return False
        for line in lines:
            self.lines += [line, ""]
        return True

    def evaluate_new_sections(self):
        m = self.med
        for case in CORO_CASES:
            if case == "call_soon_chain":
                continue
            t = m("coro", case, "tulip", "items_per_s")
            present = [p for p in ("asio", "uvloop", "asyncio") if m("coro", case, p, "items_per_s")]
            if t and present:
                best = max(present, key=lambda p: m("coro", case, p, "items_per_s"))
                b = m("coro", case, best, "items_per_s")
                self.check(f"coro {case}: ahead of every peer", t > b,
                           f"tulip {t / 1e6:.2f} M/s, best peer {TITLES[best]} {b / 1e6:.2f} M/s "
                           f"({t / b:.2f}×)")
        step, chain = m("coro", "sleep_zero_chain", "tulip", "items_per_s"), \
            m("coro", "call_soon_chain", "tulip", "items_per_s")
        if step and chain:
            self.check("coro: sleep(0) chain within 2× of the call_soon chain", chain / step <= 2,
                       f"a sleep(0) step costs {chain / step:.2f}× a call_soon step")
        for case in self.cases["streams"]:
            cpu = {p: m("streams", case, p, "server_cpu_us_per_req")
                   for p in ["tulip", "tulip-streams"] + STREAMS_PEERS}
            t, ref = cpu["tulip-streams"], cpu["tulip"]
            if t and ref:
                self.check(f"streams {case}: CPU/request ≤ 1.10× tulip's Protocol server",
                           t / ref <= 1.10, f"{t / ref:.2f}×")
            present = [p for p in STREAMS_PEERS if cpu[p]]
            if t and present:
                best = min(present, key=lambda p: cpu[p])
                self.check(f"streams {case}: CPU/request below every streams/coroutine peer",
                           t < cpu[best], f"tulip streams {t:.2f} µs, best peer "
                           f"{TITLES[best]} {cpu[best]:.2f} µs ({t / cpu[best]:.2f}×)")
        for case in self.cases["unix"]:
            t, e = (m("unix", case, "tulip", "server_cpu_us_per_req"),
                    m("unix", case, "epoll", "server_cpu_us_per_req"))
            if t and e:
                self.check(f"unix {case}: CPU/request ≤ 1.05× epoll", t / e <= 1.05,
                           f"{t / e:.2f}×")

    def check(self, target, ok, detail):
        self.checks.append((target, ok, detail))

    def build(self):
        out = self.lines
        machine = ""
        path = os.path.join(self.directory, "machine.txt")
        if os.path.exists(path):
            with open(path) as f:
                machine = f.read().strip()
        reps = max((len(v) for k, v in self.values.items() if k[0] in ("echo", "streams", "unix")),
                   default=0)
        out += ["# tulip against its peers", "", "```", machine, "```", "",
                f"Medians of {reps} interleaved repetitions, [min–max], and (in parentheses) the "
                "ratio to the epoll floor measured in the same run. † marks a case where the load "
                f"generator's own CPU share was ≥ {SATURATED:.0%}: there req/s is capped by the "
                "load generator, so rank servers by their CPU time per request.", ""]

        peers = self.peers_of("echo")
        if peers:
            out += ["## 1. Echo server throughput (ping-pong, S-byte messages on C connections)",
                    "", "Requests per second:", ""]
            self.table("echo", "req_per_s", "case", mark_saturated=True)
            out += ["Server CPU time per request (user + sys, µs; lower is better):", ""]
            self.table("echo", "server_cpu_us_per_req", "case", show_spread=False, digits=2)
            out += ["Round-trip latency p50 / p99 (µs):", ""]
            out.append("| case | " + " | ".join(TITLES[p] for p in peers) + " |")
            out.append("|---" * (len(peers) + 1) + "|")
            for case in self.cases["echo"]:
                cells = [f"{number(self.med('echo', case, p, 'p50_us'))} / "
                         f"{number(self.med('echo', case, p, 'p99_us'))}" for p in peers]
                out.append(f"| {case} | " + " | ".join(cells) + " |")
            out.append("")
            out += ["Load generator CPU share and MB/s (one way):", ""]
            out.append("| case | " + " | ".join(TITLES[p] for p in peers) + " |")
            out.append("|---" * (len(peers) + 1) + "|")
            for case in self.cases["echo"]:
                cells = [f"{number(self.med('echo', case, p, 'loadgen_cpu_share'), 2)} / "
                         f"{number(self.med('echo', case, p, 'mb_per_s'))}" for p in peers]
                out.append(f"| {case} | " + " | ".join(cells) + " |")
            out.append("")

        if self.heading("churn", "## 2. Client connection churn (each peer's client against the "
                        "epoll server)", "Connections per second (connect, send 12 bytes, read the "
                        "echo, close):"):
            self.table("churn", "conns_per_s", "workload")
        if self.heading("bulk", "## 3. Bulk stream (one connection, each way at once)", "GB/s:"):
            self.table("bulk", "gb_per_s", "workload", digits=2)
            out += ["Server CPU per MiB echoed (µs):", ""]
            self.table("bulk", "server_cpu_us_per_mib", "workload", show_spread=False)
        if self.heading("idle", "## 4. Memory per idle connection",
                        "Server RSS growth per connection (bytes) after each connection echoed one "
                        "byte; the kernel's socket buffers are not in RSS:"):
            self.table("idle", "bytes_per_conn", "workload")
        if self.heading("loop", "## 5. Loop overhead (millions of callbacks per CPU-second; ratio "
                        "to tulip)"):
            self.rate_table("loop", LOOP_CASES, LOOP_TITLES)
        if self.heading("callgrind", "## 6. User-space instructions per echo round trip "
                        "(callgrind, 1 KiB)"):
            self.table("callgrind", "instructions_per_round_trip", "case", show_spread=False)
        self.new_sections()
        self.datagram_and_sendfile_sections()
        self.python_sections()

        self.evaluate()
        if self.checks:
            out += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
            for target, ok, detail in self.checks:
                out.append(f"| {target} | {'yes' if ok else '**no**'} | {detail} |")
            out.append("")
        return "\n".join(out) + "\n"

    def evaluate(self):
        m = self.med
        for case in self.cases["echo"]:
            t, e = m("echo", case, "tulip", "req_per_s"), m("echo", case, "epoll", "req_per_s")
            tc, ec = (m("echo", case, "tulip", "server_cpu_us_per_req"),
                      m("echo", case, "epoll", "server_cpu_us_per_req"))
            if t and e:
                self.check(f"echo {case}: req/s ≥ 0.95× epoll", t / e >= 0.95, f"{t / e:.2f}×")
            if tc and ec:
                self.check(f"echo {case}: CPU/request ≤ 1.05× epoll", tc / ec <= 1.05,
                           f"{tc / ec:.2f}×")
            # tulip on io_uring (issue 15): ≤ 0.85× the epoll floor's CPU per request
            # at 1 KiB × 10 and 64, and within 1.05× the io_uring floor's.
            uc, fc = (m("echo", case, "tulip-uring", "server_cpu_us_per_req"),
                      m("echo", case, "uring", "server_cpu_us_per_req"))
            if uc and ec and case in ("S=1024 C=10", "S=1024 C=64"):
                self.check(f"echo {case}: io_uring CPU/request ≤ 0.85× epoll floor",
                           uc / ec <= 0.85, f"{uc / ec:.2f}×")
            if uc and fc and case in ("S=1024 C=10", "S=1024 C=64"):
                self.check(f"echo {case}: io_uring CPU/request ≤ 1.05× io_uring floor",
                           uc / fc <= 1.05, f"{uc / fc:.2f}×")
            others = [p for p in ("libuv", "asio", "uvloop", "asyncio")
                      if m("echo", case, p, "req_per_s")]
            if t and others:
                best = max(others, key=lambda p: m("echo", case, p, "req_per_s"))
                b = m("echo", case, best, "req_per_s")
                self.check(f"echo {case}: req/s ahead of every peer", t > b,
                           f"tulip {t / b:.2f}× the best peer ({TITLES[best]})")
        case = "seed client"
        t = m("churn", case, "tulip", "conns_per_s")
        others = [p for p in ("libuv", "asio", "uvloop", "asyncio") if m("churn", case, p, "conns_per_s")]
        if t and others:
            best = max(others, key=lambda p: m("churn", case, p, "conns_per_s"))
            b = m("churn", case, best, "conns_per_s")
            self.check("churn: ahead of every peer client", t > b,
                       f"tulip {t / b:.2f}× the best peer ({TITLES[best]})")
        for case in self.cases["bulk"]:
            t, e = m("bulk", case, "tulip", "gb_per_s"), m("bulk", case, "epoll", "gb_per_s")
            if t and e:
                self.check("bulk: ≥ 0.9× epoll", t / e >= 0.9, f"{t / e:.2f}×")
        for case in self.cases["idle"]:
            t = m("idle", case, "tulip", "bytes_per_conn")
            u, a = m("idle", case, "libuv", "bytes_per_conn"), m("idle", case, "asio", "bytes_per_conn")
            if t is not None and u is not None and a is not None:
                self.check("idle memory ≤ libuv's and ≤ Boost.Asio's", t <= u and t <= a,
                           f"tulip {t:,.0f}, libuv {u:,.0f}, Boost.Asio {a:,.0f} bytes/connection")
        for case in self.cases["callgrind"]:
            t = m("callgrind", case, "tulip", "instructions_per_round_trip")
            for peer in ("libuv", "libuv-plain"):
                u = m("callgrind", case, peer, "instructions_per_round_trip")
                if t and u:
                    self.check(f"callgrind {case}: ≤ 1/3 of {TITLES[peer]}'s instructions",
                               t * 3 <= u, f"tulip {t:,.0f}, {TITLES[peer]} {u:,.0f} ({t / u:.2f}×)")
        for case, peers in (("call_soon_chain", ["asio"]),
                            ("timers_fired", ["asio", "libuv", "uvloop", "asyncio"]),
                            ("schedule_cancel", ["asio", "libuv", "uvloop", "asyncio"]),
                            ("future_callback", ["uvloop", "asyncio"])):
            t = m("loop", case, "tulip", "items_per_s")
            present = [p for p in peers if m("loop", case, p, "items_per_s")]
            if t and present:
                best = max(present, key=lambda p: m("loop", case, p, "items_per_s"))
                b = m("loop", case, best, "items_per_s")
                self.check(f"loop {case}: ahead of every peer", t > b,
                           f"tulip {t / 1e6:.1f} M/s, best peer {TITLES[best]} {b / 1e6:.1f} M/s")
        self.evaluate_new_sections()

    def chart(self):
        if not shutil.which("gnuplot"):
            return None
        data_dir = os.path.join(self.directory, "chart-data")
        os.makedirs(data_dir, exist_ok=True)

        def write(name, workload, metric, reference, peers, cases, labels=None, scale=1.0):
            path = os.path.join(data_dir, name)
            with open(path, "w") as f:
                f.write("case " + " ".join(f'"{TITLES[p]}"' for p in peers) + "\n")
                for case in cases:
                    ref = self.med(workload, case, reference, metric) if reference else 1.0
                    row = []
                    for p in peers:
                        v = self.med(workload, case, p, metric)
                        row.append("?" if v is None or not ref else f"{v / ref * scale:.6g}")
                    label = (labels or {}).get(case, case)
                    f.write(f'"{label}" ' + " ".join(row) + "\n")
            return path, peers

        panels = []
        if self.cases["echo"]:
            labels = {c: c.replace("S=102400", "100K").replace("S=10240", "10K")
                      .replace("S=1024", "1K").replace(" C=", "/") for c in self.cases["echo"]}
            panels.append(("echo req/s, ratio to epoll (higher is better)",
                           *write("echo.dat", "echo", "req_per_s", "epoll", self.peers_of("echo"),
                                  self.cases["echo"], labels), False))
            panels.append(("echo server CPU per request, ratio to epoll (lower is better)",
                           *write("cpu.dat", "echo", "server_cpu_us_per_req", "epoll",
                                  self.peers_of("echo"), self.cases["echo"], labels), False))
        rows = [("churn", "seed client", "conns_per_s"), ("bulk", None, "gb_per_s")]
        path = os.path.join(data_dir, "other.dat")
        peers = [p for p in PEERS if p in set(self.peers_of("churn")) | set(self.peers_of("bulk"))]
        if peers:
            with open(path, "w") as f:
                f.write("case " + " ".join(f'"{TITLES[p]}"' for p in peers) + "\n")
                for workload, case, metric in rows:
                    case = case or (self.cases[workload] or [None])[0]
                    ref = self.med(workload, case, "epoll", metric)
                    cells = []
                    for p in peers:
                        v = self.med(workload, case, p, metric)
                        cells.append("?" if v is None or not ref else f"{v / ref:.6g}")
                    f.write(f'"{workload}" ' + " ".join(cells) + "\n")
            panels.append(("client churn and bulk stream, ratio to epoll (higher is better)",
                           path, peers, False))
        if self.cases["idle"]:
            panels.append(("server RSS per idle connection, bytes (lower is better)",
                           *write("idle.dat", "idle", "bytes_per_conn", None, self.peers_of("idle"),
                                  self.cases["idle"]), False))
        if self.cases["callgrind"]:
            panels.append(("user-space instructions per round trip, callgrind (log)",
                           *write("callgrind.dat", "callgrind", "instructions_per_round_trip",
                                  None, self.peers_of("callgrind"), self.cases["callgrind"]), True))
        if self.cases["loop"]:
            short = {"call_soon_chain": "chain", "call_soon_batch": "batch",
                     "timers_fired": "timers", "schedule_cancel": "sched+cancel",
                     "future_callback": "future"}
            panels.append(("loop overhead, M callbacks per CPU-second (log)",
                           *write("loop.dat", "loop", "items_per_s", None, self.peers_of("loop"),
                                  [c for c in LOOP_CASES if c in self.cases["loop"]], short, 1e-6),
                           True))
        if self.cases["coro"]:
            short = {"task_create_and_run": "task", "await_done_future": "done future",
                     "sleep_zero_chain": "sleep(0)", "call_soon_chain": "call_soon",
                     "queue_ping_pong": "queue", "await_inline": "inline await"}
            panels.append(("coroutines, M per CPU-second (log)",
                           *write("coro.dat", "coro", "items_per_s", None, self.peers_of("coro"),
                                  [c for c in CORO_CASES if c in self.cases["coro"]], short, 1e-6),
                           True))
        for workload, reference, title in (
                ("streams", "tulip", "streams servers: CPU per request, ratio to tulip Protocol"),
                ("unix", "epoll", "Unix socket echo: CPU per request, ratio to epoll")):
            if self.cases[workload]:
                labels = {c: c.replace("S=102400", "100K").replace("S=10240", "10K")
                          .replace("S=1024", "1K").replace(" C=", "/")
                          for c in self.cases[workload]}
                panels.append((f"{title} (lower is better)",
                               *write(f"{workload}.dat", workload, "server_cpu_us_per_req",
                                      reference, self.peers_of(workload), self.cases[workload],
                                      labels), False))
        # A panel with no value (a reference measured as 0 in a very short run,
        # say) would make gnuplot fail on an empty range: leave it out.
        def has_values(path):
            with open(path) as f:
                return any(cell != "?" for line in f.readlines()[1:]
                           for cell in line.rsplit('"', 1)[-1].split())
        panels = [panel for panel in panels if has_values(panel[1])]
        if not panels:
            return None
        rows_n = (len(panels) + 1) // 2
        png = os.path.join(self.directory, "peers.png")
        script = [f'set terminal pngcairo size 1400,{470 * rows_n} font "sans,10"',
                  f'set output "{png}"', f"set multiplot layout {rows_n},2",
                  "set style data histogram", "set style histogram clustered gap 1",
                  "set style fill solid 0.85 border -1", 'set datafile missing "?"',
                  "set termoption noenhanced", "set key below horizontal font ',8'", "set grid ytics", "set yrange [0:*]",
                  "set xtics rotate by -30 font ',8'"]
        for title, path, peers_shown, log in panels:
            script.append(f'set title "{title}"')
            script.append("set logscale y; set yrange [*:*]" if log else
                          "unset logscale y; set yrange [0:*]")
            columns = [f"'{path}' using {i + 2}:xtic(1) title columnheader({i + 2}) "
                       f"lc rgb '{COLORS[p]}'" for i, p in enumerate(peers_shown)]
            script.append("plot " + ", ".join(columns))
        script.append("unset multiplot")
        plot_file = os.path.join(data_dir, "peers.gnuplot")
        with open(plot_file, "w") as f:
            f.write("\n".join(script) + "\n")
        subprocess.run(["gnuplot", plot_file], check=True)
        return png


# ---- UDP echo and sendfile (bench/run-peers.sh's last sections) ----------------------------
# Kept apart so that the sections above and these change independently.
PEERS += ["floor", "tulip-buffered"]
TITLES.update({"floor": "sendfile(2) loop (floor)", "tulip-buffered": "tulip, buffered path"})
COLORS.update({"floor": "#7f7f7f", "tulip-buffered": "#e377c2"})


def datagram_and_sendfile_sections(self):
    out, m = self.lines, self.med
    if self.cases["udp"]:
        out += ["## 10. UDP echo (N senders, each with a window of datagrams in flight)", "",
                "Datagrams per second (echoes received):", ""]
        self.table("udp", "dgram_per_s", "case", mark_saturated=True)
        out += ["Server CPU time per datagram (user + sys, µs; lower is better):", ""]
        self.table("udp", "server_cpu_us_per_dgram", "case", show_spread=False, digits=2)
        out += ["Datagrams lost (not echoed within the bound), summed over repetitions:", ""]
        peers = self.peers_of("udp")
        out.append("| case | " + " | ".join(TITLES[p] for p in peers) + " |")
        out.append("|---" * (len(peers) + 1) + "|")
        for case in self.cases["udp"]:
            cells = [number(sum(self.values.get(("udp", case, p, "lost"), [0])), 0) for p in peers]
            out.append(f"| {case} | " + " | ".join(cells) + " |")
        out.append("")
        for case in self.cases["udp"]:
            t = m("udp", case, "tulip", "dgram_per_s")
            tc = m("udp", case, "tulip", "server_cpu_us_per_dgram")
            others = [p for p in ("libuv", "asio", "uvloop", "asyncio")
                      if m("udp", case, p, "dgram_per_s")]
            if t and others:
                best = max(others, key=lambda p: m("udp", case, p, "dgram_per_s"))
                b = m("udp", case, best, "dgram_per_s")
                self.check(f"udp {case}: datagrams/s ahead of every peer", t > b,
                           f"tulip {t / b:.2f}× the best peer ({TITLES[best]})")
            cheapest = [p for p in ("libuv", "asio", "uvloop", "asyncio")
                        if m("udp", case, p, "server_cpu_us_per_dgram")]
            if tc and cheapest:
                best = min(cheapest, key=lambda p: m("udp", case, p, "server_cpu_us_per_dgram"))
                b = m("udp", case, best, "server_cpu_us_per_dgram")
                self.check(f"udp {case}: CPU/datagram below every peer's", tc < b,
                           f"tulip {tc:.2f} µs, best peer {TITLES[best]} {b:.2f} µs")
    if self.cases["udp-callgrind"]:
        out += ["## 11. User-space instructions per UDP datagram echoed (callgrind)", ""]
        self.table("udp-callgrind", "instructions_per_datagram", "case", show_spread=False)
    if self.cases["sendfile"]:
        out += ["## 12. sendfile: one file to one socket", "", "GB/s (the receiver verifies every byte):",
                ""]
        self.table("sendfile", "gb_per_s", "workload", reference="floor", digits=2)
        out += ["Sender CPU per MiB sent (µs):", ""]
        self.table("sendfile", "server_cpu_us_per_mib", "workload", reference="floor",
                   show_spread=False)


Report.datagram_and_sendfile_sections = datagram_and_sendfile_sections

# tulip's Python loop beside uvloop and asyncio (bench/charts/python_report.py).
PEERS[1:1] = ["tulip-py", "tulip-py-streams"]
TITLES.update(PYTHON_TITLES)
COLORS.update(PYTHON_COLORS)
Report.python_sections = lambda self: python_sections(self, TITLES, SATURATED)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_report.py RESULTS_DIR")
    report = Report(sys.argv[1])
    summary = report.build()
    with open(os.path.join(sys.argv[1], "summary.md"), "w") as f:
        f.write(summary)
    report.chart()


if __name__ == "__main__":
    main()
