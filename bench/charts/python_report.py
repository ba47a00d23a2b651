"""The "python" section of summary.md: tulip's Python loop beside uvloop and asyncio.

Kept apart from make_report.py (which calls `python_sections`) so that the
other sections and this one change independently. The targets are issue 16's:

- echo servers (Protocol and streams): tulip's server CPU per request above the
  C floor at most half of uvloop's (tulip − floor ≤ 0.5 × (uvloop − floor)), and
  req/s ahead of uvloop wherever the Python server, not the load generator, is
  the bottleneck;
- the loop and coroutine microbenchmarks: ahead of uvloop in every case;
- client churn with the seed's client: measured against uvloop's and asyncio's.
"""

PYTHON_TITLES = {"tulip-py": "tulip (Python)", "tulip-py-streams": "tulip streams (Python)"}
PYTHON_COLORS = {"tulip-py": "#d62728", "tulip-py-streams": "#e377c2"}
# The Protocol server and its streams server set against uvloop's and the floor.
ECHO_WORKLOADS = (("py-echo", "tulip-py", "uvloop", "asyncio.Protocol"),
                  ("py-streams", "tulip-py-streams", "uvloop-streams", "streams"))
# Microbenchmark cases: (workload, case, title). The issue names five; the
# others of the two scripts are shown as well.
MICRO_CASES = [("py-loop", "call_soon_chain", "call_soon chain"),
               ("py-loop", "call_soon_batch", "call_soon batch of 1000"),
               ("py-loop", "timers_fired", "due timers fired, 1000 per batch"),
               ("py-loop", "schedule_cancel", "call_later + cancel"),
               ("py-loop", "future_callback", "future + done callback"),
               ("py-coro", "task_create_and_run", "create_task + await (batches of 1000)"),
               ("py-coro", "sleep_zero_chain", "await asyncio.sleep(0) chain"),
               ("py-coro", "await_done_future", "await of a done future"),
               ("py-coro", "queue_ping_pong", "Queue put/get ping-pong"),
               ("py-coro", "await_inline", "await of a coroutine that returns at once")]
# The five: ahead of uvloop is the target for these.
TARGET_CASES = {"call_soon_chain", "schedule_cancel", "future_callback", "task_create_and_run",
                "sleep_zero_chain"}
MICRO_PEERS = ["tulip-py", "uvloop", "asyncio"]


def python_sections(self, titles, saturated):
    """Appends sections 14-17 to self.lines and their targets to self.checks."""
    out, m = self.lines, self.med
    titles.update(PYTHON_TITLES)
    for workload, tulip, uvloop, name in ECHO_WORKLOADS:
        if not self.cases[workload]:
            continue
        out += [f"## Python: {name} echo servers on tulip, uvloop and asyncio (ping-pong)", "",
                "Requests per second, and (in parentheses) the ratio to the epoll floor:", ""]
        self.table(workload, "req_per_s", "case", mark_saturated=True)
        out += ["Server CPU time per request (user + sys, µs; lower is better):", ""]
        self.table(workload, "server_cpu_us_per_req", "case", show_spread=False, digits=2)
        out += ["CPU per request above the floor, tulip's over uvloop's (the target: ≤ 0.50), "
                "and req/s, tulip's over uvloop's:", "",
                "| case | tulip − floor (µs) | uvloop − floor (µs) | ratio | req/s tulip / uvloop "
                "| load generator CPU share (tulip run) |", "|---|---|---|---|---|---|"]
        for case in self.cases[workload]:
            t, u, f = (m(workload, case, p, "server_cpu_us_per_req") for p in (tulip, uvloop, "epoll"))
            tr, ur = m(workload, case, tulip, "req_per_s"), m(workload, case, uvloop, "req_per_s")
            share = m(workload, case, tulip, "loadgen_cpu_share")
            if None in (t, u, f, tr, ur):
                continue
            over = (t - f) / (u - f) if u > f else float("inf")
            out.append(f"| {case} | {t - f:.2f} | {u - f:.2f} | {over:.2f} | {tr / ur:.2f}× | "
                       f"{share:.2f} |")
            self.check(f"{workload} {case}: tulip − floor ≤ 0.5 × (uvloop − floor)", over <= 0.5,
                       f"{over:.2f} of uvloop's overhead ({t - f:.2f} µs against {u - f:.2f} µs)")
            if share is not None and share < saturated:
                self.check(f"{workload} {case}: req/s ahead of uvloop", tr > ur, f"{tr / ur:.2f}×")
        out.append("")

    if self.cases["py-loop"] or self.cases["py-coro"]:
        out += ["## Python: loop and coroutine microbenchmarks (millions per CPU-second; "
                "ratio to tulip)", "",
                "| case | " + " | ".join(titles[p] for p in MICRO_PEERS) + " |",
                "|---" * (len(MICRO_PEERS) + 1) + "|"]
        for workload, case, title in MICRO_CASES:
            ref = m(workload, case, "tulip-py", "items_per_s")
            cells = []
            for p in MICRO_PEERS:
                v = m(workload, case, p, "items_per_s")
                cells.append("n/a" if v is None else f"{v / 1e6:.2f}" +
                             ("" if p == "tulip-py" or not ref else f" ({v / ref:.2f}×)"))
            out.append(f"| {title} | " + " | ".join(cells) + " |")
            u = m(workload, case, "uvloop", "items_per_s")
            if case in TARGET_CASES and ref and u:
                self.check(f"python {title}: ahead of uvloop", ref > u,
                           f"tulip {ref / 1e6:.2f} M/s, uvloop {u / 1e6:.2f} M/s ({ref / u:.2f}×)")
        out.append("")

    if self.cases["py-churn"]:
        out += ["## Python: client churn with the seed's client (against the epoll server)", "",
                "Connections per second (connect, send 12 bytes, read the echo, close); tulip's "
                "client runs under `python3 -m tulip`, unchanged:", ""]
        self.table("py-churn", "conns_per_s", "workload", reference="uvloop")
        t, u = m("py-churn", "seed client", "tulip-py", "conns_per_s"), \
            m("py-churn", "seed client", "uvloop", "conns_per_s")
        if t and u:
            self.check("python churn: the seed's client ahead of uvloop's", t > u, f"{t / u:.2f}×")
