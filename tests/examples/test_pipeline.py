#!/usr/bin/env python3
"""Runs the pipeline example: a shell command fed on stdin, its output
streamed, its exit status printed.

    test_pipeline.py PIPELINE_BINARY

Exit status 0 on success, 1 with the reason otherwise.
"""
import subprocess
import sys


def run(binary, *arguments, stdin=None):
    return subprocess.run([binary, *arguments], input=stdin, capture_output=True, text=True,
                          timeout=60)


def expect(result, stdout, stderr="", returncode=0):
    got = (result.returncode, result.stdout, result.stderr)
    if got != (returncode, stdout, stderr):
        print(f"FAILED: expected {(returncode, stdout, stderr)!r}, got {got!r}")
        sys.exit(1)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    # The demonstration: tr a-z A-Z, fed two lines.
    expect(run(binary), "HELLO FROM TULIP\nTHROUGH A PIPE\nexit status: 0\n")
    # Input given on the command line, any command.
    expect(run(binary, "--input", "pear\\napple\\n", "sort"), "apple\npear\nexit status: 0\n")
    # Our own stdin is the child's input; a large one goes through whole.
    lines = "".join(f"line {i}\n" for i in range(200000))
    expect(run(binary, "wc -l", stdin=lines), "200000\nexit status: 0\n")
    # stderr streamed apart; the child's status reported, not ours.
    expect(run(binary, "--input", "", "echo out; echo oops >&2; exit 3"),
           "out\nexit status: 3\n", "oops\n")
    # A child killed by a signal: -N, as asyncio reports it.
    expect(run(binary, "--input", "", "kill -KILL $$"), "exit status: -9\n")
    print("pipeline example: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
