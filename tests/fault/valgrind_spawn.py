#!/usr/bin/env python3
"""The spawn, pipe and executor fault tests under valgrind memcheck with
--track-fds=yes: no memory error, no definite leak, and no descriptor left
open at exit other than the standard three and those inherited from the
caller.

    valgrind_spawn.py VALGRIND FAULT_TEST_BINARY

Exit status 0 on success, 1 with valgrind's report otherwise.
"""
import os
import re
import subprocess
import sys
import tempfile

TESTS = ":".join([
    "SubprocessFault.*",
    "SigchldFallback.*",
    "PipeFault.*",
    "ExecutorFault.*",
])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    valgrind, binary = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="tulip-valgrind-spawn-") as logs:
        log = os.path.join(logs, "memcheck.log")
        command = [valgrind, "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--track-fds=yes", f"--log-file={log}", binary, f"--gtest_filter={TESTS}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=1500)
        with open(log) as file:
            report = file.read()
    # Only the test process's own lines: a child between fork and exec (valgrind
    # turns posix_spawn's vfork into a fork) may have written some too.
    main_pid = re.match(r"==(\d+)==", report)
    if not main_pid:
        print(f"FAILED: no valgrind report\n{report}")
        return 1
    own = "\n".join(line for line in report.splitlines()
                    if line.startswith(f"=={main_pid.group(1)}=="))
    problems = []
    if result.returncode != 0:
        problems.append(f"exit status {result.returncode}\n{result.stdout[-4000:]}")
    if not re.search(r"ERROR SUMMARY: 0 errors from 0 contexts", own):
        problems.append("memcheck found errors")
    lost = re.search(r"definitely lost: ([\d,]+) bytes", own)
    if lost and lost.group(1) != "0":
        problems.append(f"{lost.group(1)} bytes definitely lost")
    # Each open descriptor is a paragraph; inherited ones say so.
    leaked = []
    for match in re.finditer(r"Open (?:file descriptor|AF_\w+ socket) (\d+):(.*?)(?=\n==\d+== \n|\Z)",
                             own, re.S):
        fd = int(match.group(1))
        where = match.group(2)
        # The loop's signal self-pipe is process-wide and kept for the life of
        # the process by design (signal_handlers.cpp). (valgrind 3.19 does not
        # know pidfd_open, so every child here is watched through SIGCHLD,
        # which opens it.)
        if fd > 2 and "<inherited from parent>" not in where and "add_signal_handler" not in where:
            leaked.append(match.group(0))
    if leaked:
        problems.append("descriptors left open:\n" + "\n".join(leaked))
    if problems:
        print("FAILED: " + "\n".join(problems) + "\n--- valgrind's report ---\n" + own[-8000:])
        return 1
    summary = re.search(r"FILE DESCRIPTORS: .*", own)
    print(f"valgrind: 0 errors, no definite leak; {summary.group(0) if summary else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
