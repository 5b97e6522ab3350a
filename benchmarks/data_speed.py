"""How fast Hoda loads: per-row Python decoding vs ganbench's vectorised reader, cold vs warm load_dataset.

Run: .venv/bin/python benchmarks/data_speed.py [--root DATA_ROOT]. Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganbench.errors import run_script
from ganbench.data import data_root, load_dataset, read_hoda_cdb
from ganbench.data.cache import forget_file_hashes

FILE = "Test 20000.cdb"


def decode_python(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """The straightforward reader: loop over records, rows and runs (variable-size, type-0 files)."""
    raw = path.read_bytes()
    images, labels = [], []
    offset = 1024
    while offset < len(raw):
        label, width, height = raw[offset + 1], raw[offset + 2], raw[offset + 3]
        count = raw[offset + 4] | raw[offset + 5] << 8
        image = np.zeros((height, width), dtype=np.uint8)
        pos = offset + 6
        for y in range(height):
            x, ink = 0, False
            while x < width:
                run = raw[pos]
                pos += 1
                if ink:
                    image[y, x : x + run] = 255
                x += run
                ink = not ink
        images.append(image)
        labels.append(label)
        offset += 6 + count
    return images, labels


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data root holding hoda/ (default: ganbench's data_root())")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    root = data_root(args.root)
    path = root / "hoda" / "DigitDB" / FILE
    images, labels = read_hoda_cdb(path)
    reference, ref_labels = decode_python(path)
    assert ref_labels == labels.tolist() and all(np.array_equal(a, b) for a, b in zip(images, reference, strict=True))

    # Interleaved so a noisy moment on the machine hits both decoders alike; best of N each.
    python_s, vector_s = [], []
    for _ in range(args.repeats):
        python_s.append(timed(lambda: decode_python(path)))
        vector_s.append(timed(lambda: read_hoda_cdb(path)))

    cold_s, warm_s = [], []
    with tempfile.TemporaryDirectory(prefix="ganbench-bench-") as scratch:
        for i in range(args.repeats):
            # A fresh empty cache each round: decode + preprocess + cache write, file hashed again.
            os.environ["GANBENCH_CACHE"] = str(Path(scratch) / f"cache{i}")
            forget_file_hashes()
            cold_s.append(timed(lambda: load_dataset("hoda", "test", 28, root=root)))
            forget_file_hashes()  # warm as a new process sees it: re-hash the .cdb, read the cache
            warm_s.append(timed(lambda: load_dataset("hoda", "test", 28, root=root)))
    data = load_dataset("hoda", "test", 28, root=root)

    print(f"measured on: {path} ({len(labels):,} records, {data.images.shape[0]:,} images after load)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(f"timing: best of {args.repeats}; decode = file read + parse to uint8 arrays; load = load_dataset('hoda', 'test', 28)")
    figures = {
        "hoda_records": len(labels),
        "hoda_decode_python_s": min(python_s),
        "hoda_decode_vectorised_s": min(vector_s),
        "hoda_decode_speedup": min(python_s) / min(vector_s),
        "hoda_load_cold_s": min(cold_s),
        "hoda_load_warm_s": min(warm_s),
        "hoda_cold_vs_warm": min(cold_s) / min(warm_s),
        "cpu_threads": torch.get_num_threads(),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    run_script(main, "data_speed.py")
