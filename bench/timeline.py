"""Where an asbx command's time goes: run `asbx -vv ARGS` and stamp each runtime command, each
of its ends and each step line with the seconds since the command started.

Run it in a project directory: python bench/timeline.py apply -y
"""

from __future__ import annotations

import subprocess
import sys
import time

SHOWN = ("$ ", "->", "creating", "recording", "destroying", "Apply", "Destroy", "Plan:")


def main() -> None:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "asbx", "-vv", *sys.argv[1:]],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if any(mark in line for mark in SHOWN):
            print(f"{time.perf_counter() - started:6.3f} {line.rstrip()[:110]}")
    process.wait()
    print(f"{time.perf_counter() - started:6.3f} exit {process.returncode}")


if __name__ == "__main__":
    main()
