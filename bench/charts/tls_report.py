"""Turns a bench/run-tls.sh results directory into summary.md.

Usage: python3 bench/charts/tls_report.py RESULTS_DIR

Reads RESULTS_DIR/results.csv (workload,case,peer,rep,metric,value) and
RESULTS_DIR/machine.txt; writes RESULTS_DIR/summary.md: medians, [min-max],
ratios to the epoll + OpenSSL floor, and the issue's targets checked.
"""
import csv
import os
import statistics
import sys
from collections import defaultdict

PEERS = ["epoll", "tulip", "asio", "uvloop", "asyncio"]
TITLES = {"epoll": "epoll + OpenSSL (floor)", "tulip": "tulip", "asio": "Boost.Asio ssl::stream",
          "uvloop": "uvloop ssl=", "asyncio": "asyncio ssl="}
SATURATED = 0.9


def load(directory):
    values = defaultdict(list)
    cases = defaultdict(list)
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


def number(x, digits=None):
    if x is None:
        return "—"
    if digits is None:
        digits = 0 if abs(x) >= 100 else 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


class Report:
    def __init__(self, directory):
        self.directory = directory
        self.values, self.cases = load(directory)
        self.lines = []
        self.checks = []

    def med(self, workload, case, peer, metric):
        data = self.values.get((workload, case, peer, metric))
        return statistics.median(data) if data else None

    def table(self, workload, metric, header, digits=None):
        peers = [p for p in PEERS if any(k[0] == workload and k[2] == p for k in self.values)]
        if not peers:
            return
        self.lines.append(f"| {header} | " + " | ".join(TITLES[p] for p in peers) + " |")
        self.lines.append("|---" * (len(peers) + 1) + "|")
        for case in self.cases[workload]:
            ref = self.med(workload, case, "epoll", metric)
            cells = []
            for peer in peers:
                value = self.med(workload, case, peer, metric)
                if value is None:
                    cells.append("—")
                    continue
                cell = number(value, digits)
                if peer != "epoll" and ref:
                    cell += f" ({value / ref:.2f}×)"
                data = self.values[(workload, case, peer, metric)]
                if len(data) > 1:
                    cell += f" [{number(min(data), digits)}–{number(max(data), digits)}]"
                share = self.med(workload, case, peer, "loadgen_cpu_share")
                if share is not None and share >= SATURATED:
                    cell += " †"
                cells.append(cell)
            self.lines.append(f"| {case} | " + " | ".join(cells) + " |")
        self.lines.append("")

    def evaluate(self):
        m = self.med
        for workload, metric, what in (("tls-echo", "server_cpu_us_per_req", "request"),
                                       ("tls-handshake", "server_cpu_us_per_handshake",
                                        "handshake")):
            for case in self.cases[workload]:
                t, e = m(workload, case, "tulip", metric), m(workload, case, "epoll", metric)
                if t and e:
                    self.checks.append((f"{workload} {case}: server CPU per {what} ≤ 1.10× the floor",
                                        t / e <= 1.10, f"{t / e:.2f}×"))
                others = [p for p in ("asio", "uvloop", "asyncio") if m(workload, case, p, metric)]
                if t and others:
                    best = min(others, key=lambda p: m(workload, case, p, metric))
                    b = m(workload, case, best, metric)
                    self.checks.append((f"{workload} {case}: below every peer", t < b,
                                        f"tulip {t / b:.2f}× the best peer ({TITLES[best]})"))
        for conns in ("1", "10", "64"):
            case = f"S=10240 C={conns}"
            t = m("tls-echo", case, "tulip", "server_cpu_us_per_req")
            p = m("echo", case, "tulip-tcp", "server_cpu_us_per_req")
            if t and p:
                self.checks.append((f"TLS echo {case}: CPU per request ≤ 1.5× tulip's plain TCP",
                                    t / p <= 1.5, f"{t:.1f} µs against {p:.1f} µs ({t / p:.2f}×)"))

    def build(self):
        machine = ""
        path = os.path.join(self.directory, "machine.txt")
        if os.path.exists(path):
            with open(path) as f:
                machine = f.read().strip()
        reps = max((len(v) for k, v in self.values.items() if k[0] == "tls-echo"), default=0)
        out = self.lines
        out += ["# TLS: tulip against its peers", "", "```", machine, "```", "",
                f"Medians of {reps} interleaved repetitions, [min–max], and (in parentheses) the "
                "ratio to the epoll + OpenSSL floor measured in the same run. TLS 1.3, "
                "TLS_AES_128_GCM_SHA256, an ECDSA P-256 certificate. † marks a case where the "
                f"load generator's own CPU share was ≥ {SATURATED:.0%}: rank servers by CPU per "
                "request there.", ""]
        out += ["## TLS echo (ping-pong, S-byte messages on C connections)", "",
                "Requests per second:", ""]
        self.table("tls-echo", "req_per_s", "case")
        out += ["Server CPU time per request (user + sys, µs; lower is better):", ""]
        self.table("tls-echo", "server_cpu_us_per_req", "case", digits=1)
        out += ["## Full handshakes (10 at a time, no resumption)", "", "Handshakes per second:", ""]
        self.table("tls-handshake", "handshakes_per_s", "key exchange")
        out += ["Server CPU time per handshake (µs):", ""]
        self.table("tls-handshake", "server_cpu_us_per_handshake", "key exchange")
        tcp = [(c, self.med("echo", c, "tulip-tcp", "server_cpu_us_per_req"))
               for c in self.cases["echo"]]
        if tcp:
            out += ["## tulip's plain TCP echo at 10 KiB, for comparison", "",
                    "| case | server CPU per request (µs) |", "|---|---|"]
            out += [f"| {c} | {number(v, 1)} |" for c, v in tcp]
            out.append("")
        self.evaluate()
        if self.checks:
            out += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
            for target, ok, detail in self.checks:
                out.append(f"| {target} | {'yes' if ok else '**no**'} | {detail} |")
            out.append("")
        return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tls_report.py RESULTS_DIR")
    summary = Report(sys.argv[1]).build()
    with open(os.path.join(sys.argv[1], "summary.md"), "w") as f:
        f.write(summary)


if __name__ == "__main__":
    main()
