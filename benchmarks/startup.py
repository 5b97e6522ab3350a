"""Start-up of ganbench's command-line entry points: the seconds a fresh interpreter takes to import each.

Every `python -m ganbench...` pays this before it reads its arguments, and the test suite pays it for every
process it starts. Each entry point is imported `--repeats` times in a fresh interpreter (the median is
reported), and whether that import loaded torch is printed beside it: the report reads the MLflow store and
draws figures, and needs neither torch nor torchvision (together 6-7 s here, `torch._dynamo` included, which
torchvision's ops load).

Run: .venv/bin/python benchmarks/startup.py [--repeats 3]
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

from ganbench.errors import run_script

ENTRY_POINTS = {
    "train": "ganbench.app",  # python -m ganbench
    "report": "ganbench.report.cli",  # python -m ganbench.report
    "evaluate": "ganbench.evaluate.rescore",  # python -m ganbench.evaluate
    "sample": "ganbench.sample",  # python -m ganbench.sample
}
PROBE = "import sys, {module}; print('torch' in sys.modules)"


def import_seconds(module: str) -> tuple[float, bool]:
    """Wall seconds of a fresh interpreter importing ``module`` (and exiting), and whether torch came with it."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    seconds: dict[str, list[float]] = {name: [] for name in ENTRY_POINTS}
    loads_torch: dict[str, bool] = {}
    for _ in range(args.repeats):  # interleaved, so a machine that drifts slower weighs on every entry point alike
        for name, module in ENTRY_POINTS.items():
            took, loads_torch[name] = import_seconds(module)
            seconds[name].append(took)
    print()
    for name in ENTRY_POINTS:
        print(f"startup_{name}_seconds: {statistics.median(seconds[name]):.2f}")
        print(f"startup_{name}_imports_torch: {loads_torch[name]}")


if __name__ == "__main__":
    run_script(main, "startup.py")
