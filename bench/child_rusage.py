"""Runs one command and prints its resource use as one JSON line: wall seconds, CPU seconds, peak RSS.

Usage: python -S bench/child_rusage.py OUTPUT_FILE COMMAND [ARG...]

Why a separate small process: Linux keeps the largest resident size a process ever had, and a child
spawned straight from the benchmark (which holds a simulated backlog of 10^5 events) starts out sharing
the benchmark's memory, so its ru_maxrss would report the benchmark's size. Spawned from this small
launcher, the command's ru_maxrss is its own (at least this launcher's few megabytes).
The command's stdout and stderr go to OUTPUT_FILE.
"""

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    output, command = argv[0], argv[1:]
    started = time.perf_counter()
    with open(output, "wb") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "exit_code": child.returncode,
        "wall_seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
