"""Hoda handwritten Farsi digits: the .cdb reader (vectorised) and the split loader."""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ganbench.data.cache import cache_key, cached_build, file_sha256
from ganbench.data.core import DEFAULT_PREPROCESS, WHERE_TO_GET, DataError, file_record
from ganbench.data.download import download_file, search_dirs, verify_checksum, writable_dir
from ganbench.data.hoda_reader import hoda_reader_batch
from ganbench.data.preprocess import mnist_style_batch

log = logging.getLogger(__name__)

HEADER_SIZE = 1024
START_BYTE = 0xFF
NUM_CLASSES = 10

TRAIN_FILE = "Train 60000.cdb"
TEST_FILE = "Test 20000.cdb"
REMAINING_FILE = "RemainingSamples.cdb"
# Published sha256 of the files (shared/data/README.md); Train 60000 has none here, so it is
# checked by parsing it and counting 60,000 records instead.
KNOWN_SHA256 = {
    TEST_FILE: "f947c38071c886677ec212fe5000863fafae0b4ed349d97d51c33abe3c8e2b07",
    REMAINING_FILE: "11c9b0661b8de5f743b1b01ac76b4de19b238062d6da3500b5d6128fb1989e3d",
}
KNOWN_RECORDS = {TRAIN_FILE: 60_000, TEST_FILE: 20_000, REMAINING_FILE: 22_352}
BASE_URL = "https://raw.githubusercontent.com/amir-saniyan/HodaDatasetReader/master/DigitDB/"
PREPROCESS = {"mnist": mnist_style_batch, "hoda_reader": hoda_reader_batch}  # dataset.preprocess -> raw crops to uint8


def _fail(path: Path, offset: int, what: str) -> DataError:
    return DataError(
        f"{path.name}: {what} at byte offset {offset} of {path}; "
        "the .cdb file is damaged or not a Hoda file, replace it with a fresh copy"
    )


def read_hoda_cdb(path: str | os.PathLike) -> tuple[list[np.ndarray], np.ndarray]:
    """Decode a Hoda .cdb file into uint8 HxW images (ink 255 on 0) and int64 labels, in file order.

    Binary (type 0) images are run-length decoded for the whole file at once with numpy;
    grayscale (type 1) images are returned as stored (column-major bytes transposed to HxW).
    """
    path = Path(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DataError(f"{path.name}: cannot read {path} ({err.strerror or err})") from err
    raw = buf.tobytes()  # Python indexing into bytes is the fastest per-record access
    size = len(raw)
    if size < HEADER_SIZE:
        raise _fail(path, size, f"file is {size} bytes, shorter than the {HEADER_SIZE}-byte header (truncated)")

    _year, _month, _day, fixed_h, fixed_w, total = struct.unpack_from("<HBBBBI", raw, 0)
    class_counts = np.frombuffer(raw, dtype="<u4", count=128, offset=10)
    image_type = raw[522]
    if image_type not in (0, 1):
        raise _fail(path, 522, f"unknown image type {image_type} (expected 0 binary or 1 grayscale)")
    fixed = fixed_h > 0 and fixed_w > 0
    head_len = 4 if fixed else 6  # start, label, [width, height,] u16 byte count

    # Record offsets chain (each record's byte count leads to the next), so this walk is
    # sequential; it only follows the chain (~8 ms for 20,000 records), the checks are vectorised.
    count_at = head_len - 2
    last_start = size - head_len  # a record header starting after this is cut off
    offsets: list[int] = []
    append = offsets.append
    off = HEADER_SIZE
    while off <= last_start:
        append(off)
        off += head_len + (raw[off + count_at] | raw[off + count_at + 1] << 8)
    offsets_a = np.asarray(offsets, dtype=np.int64)

    # A wrong start byte comes first: after it the chain itself is garbage.
    bad = np.flatnonzero(buf[offsets_a] != START_BYTE)
    if bad.size:
        i = int(bad[0])
        raise _fail(path, offsets[i], f"record {i} starts with byte 0x{raw[offsets[i]]:02X}, not 0xFF")
    if off > size:
        i = len(offsets) - 1
        need, have = off - offsets[i] - head_len, size - offsets[i] - head_len
        raise _fail(path, offsets[i], f"record {i} is truncated ({have} of {need} data bytes)")
    if off < size:
        raise _fail(path, off, f"record {len(offsets)} header is truncated ({size - off} of {head_len} bytes)")

    num = len(offsets)
    if num != total:
        raise _fail(path, size, f"file holds {num} records but its header says {total}")
    fields = buf[offsets_a[:, None] + np.arange(head_len)].astype(np.int64)
    counts_a = fields[:, -2] | fields[:, -1] << 8
    if fixed:
        widths_a = np.full(num, fixed_w, dtype=np.int64)
        heights_a = np.full(num, fixed_h, dtype=np.int64)
    else:
        widths_a, heights_a = fields[:, 2], fields[:, 3]
    labels = np.ascontiguousarray(fields[:, 1])

    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(offsets_a[i]) + 1, f"record {i} has label {labels[i]}, outside 0-9")
    bad = np.flatnonzero((widths_a == 0) | (heights_a == 0))
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(offsets_a[i]), f"record {i} has an empty image ({widths_a[i]}x{heights_a[i]})")
    if class_counts.sum() == num:  # per-class counts are filled in: they must match too
        found = np.bincount(labels, minlength=128)
        if not np.array_equal(found, class_counts):
            cls = int(np.flatnonzero(found != class_counts)[0])
            raise _fail(path, 10 + 4 * cls, f"class {cls} has {found[cls]} records but the header says {class_counts[cls]}")

    data_starts = offsets_a + head_len
    if image_type == 1:
        return _decode_grayscale(path, buf, data_starts, widths_a, heights_a, counts_a), labels
    return _decode_binary(path, _payload(buf, offsets_a, head_len), offsets_a, widths_a, heights_a, counts_a), labels


def _payload(buf: np.ndarray, offsets: np.ndarray, head_len: int) -> np.ndarray:
    """All records' data bytes concatenated: the file minus its header and the record headers."""
    # Valid only once the records are known to tile the file exactly, as read_hoda_cdb checks.
    keep = np.ones(buf.size, dtype=bool)
    keep[:HEADER_SIZE] = False
    keep[(offsets[:, None] + np.arange(head_len)).ravel()] = False
    return buf[keep]


def _decode_binary(
    path: Path,
    payload: np.ndarray,
    offsets: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray,
    counts: np.ndarray,
) -> list[np.ndarray]:
    """Run-length decode every record at once: one cumsum, one searchsorted, one np.repeat."""
    num = len(offsets)
    if num == 0:
        return []
    runs = payload.astype(np.int64)
    cum = np.cumsum(runs)  # pixel position reached after each run, over the whole file
    run_end = np.cumsum(counts)  # index (exclusive) of each record's last run
    pix_before = np.concatenate(([0], cum))[run_end - counts]  # pixels of all earlier records
    areas = widths * heights

    # Each record's runs must cover exactly its H*W pixels; checking this first also keeps
    # the row search below from wandering into a neighbouring record.
    covered = np.concatenate(([0], cum))[run_end] - pix_before
    bad = np.flatnonzero(covered != areas)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            path, int(offsets[i]), f"record {i} run lengths cover {covered[i]} pixels, not {widths[i]}x{heights[i]}"
        )

    # Row k of record r ends with the first run whose cumulative sum reaches its k*W pixels;
    # a zero-length run right after belongs to the next row, exactly as a sequential reader does.
    row_record = np.repeat(np.arange(num), heights)
    row_in_record = np.arange(int(heights.sum()), dtype=np.int64) - np.repeat(np.cumsum(heights) - heights, heights)
    targets = pix_before[row_record] + (row_in_record + 1) * widths[row_record]
    row_last = np.searchsorted(cum, targets, side="left")
    bad_rows = np.flatnonzero(cum[row_last] != targets)
    if bad_rows.size:
        k = int(bad_rows[0])
        i = int(row_record[k])
        raise _fail(path, int(offsets[i]), f"record {i} row {row_in_record[k]} runs do not add up to the width {widths[i]}")
    record_last_row = np.cumsum(heights) - 1
    extra = run_end - 1 - row_last[record_last_row]
    bad = np.flatnonzero(extra != 0)
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(offsets[i]), f"record {i} has {extra[i]} run bytes after its last row")

    # Colour of a run = parity of its index within its row (background first): a running XOR that
    # flips at every run and, at a row's first run, flips back to 0 exactly when the row before
    # ended on an ink run (an even number of runs). One uint8 cumsum (its wrap-around keeps the
    # parity) instead of int64 index arithmetic over every run.
    row_first = row_last[:-1] + 1
    runs_before = np.diff(row_first, prepend=0)  # run count of the row before each row start
    flips = np.ones(len(runs), dtype=np.uint8)
    flips[0] = 0
    flips[row_first] = (runs_before + 1) & 1
    ink = np.cumsum(flips, dtype=np.uint8) & 1
    pixels = np.repeat(ink * np.uint8(255), runs)

    # Views into one buffer: 20,000 small copies would cost more than the whole decode.
    return [
        pixels[s : s + h * w].reshape(h, w)
        for s, h, w in zip(pix_before.tolist(), heights.tolist(), widths.tolist(), strict=True)
    ]


def _decode_grayscale(
    path: Path,
    buf: np.ndarray,
    data_starts: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray,
    counts: np.ndarray,
) -> list[np.ndarray]:
    """Grayscale records: W*H bytes column-major, transposed to HxW."""
    bad = np.flatnonzero(counts != widths * heights)
    if bad.size:
        i = int(bad[0])
        raise _fail(path, int(data_starts[i]) - 2, f"record {i} has {counts[i]} data bytes, not {widths[i]}x{heights[i]}")
    return [
        np.ascontiguousarray(buf[s : s + w * h].reshape(w, h).T)
        for s, w, h in zip(data_starts.tolist(), widths.tolist(), heights.tolist(), strict=True)
    ]


def _find(root: Path, filename: str) -> Path | None:
    for folder in search_dirs(root, "hoda/DigitDB"):
        if (folder / filename).is_file():
            return folder / filename
    return None


def _download(root: Path, filename: str) -> Path:
    """Fetch one .cdb file into root/hoda/DigitDB (or the cache's downloads) and check it."""
    folder = writable_dir(root / "hoda" / "DigitDB", "hoda/DigitDB")

    def verify(tmp: Path) -> None:
        if filename in KNOWN_SHA256:
            verify_checksum(tmp, KNOWN_SHA256[filename])
        else:
            _images, labels = read_hoda_cdb(tmp)
            if len(labels) != KNOWN_RECORDS[filename]:
                raise DataError(f"{filename}: has {len(labels)} records, expected {KNOWN_RECORDS[filename]}")

    url = BASE_URL + filename.replace(" ", "%20")
    return download_file([url], folder / filename, verify)


def hoda_split_file(root: Path, split: str, download: bool) -> Path:
    """The .cdb file a split reads: test 'Test 20000.cdb'; train 'Train 60000.cdb', else 'RemainingSamples.cdb'."""
    if split == "test":
        found = _find(root, TEST_FILE)
        if found is None and download:
            found = _download(root, TEST_FILE)
        if found is None:
            raise _missing(root, split, f"'{TEST_FILE}'")
        return found

    found = _find(root, TRAIN_FILE)
    remaining = _find(root, REMAINING_FILE)
    if found is None and download:
        try:
            found = _download(root, TRAIN_FILE)
        except DataError as err:
            if remaining is None:
                try:
                    remaining = _download(root, REMAINING_FILE)
                except DataError:
                    raise err from None
            log.warning("%s; using %s instead", err, REMAINING_FILE)
    if found is not None:
        return found
    if remaining is None:
        raise _missing(root, split, f"'{TRAIN_FILE}' or '{REMAINING_FILE}'")
    return remaining


def _missing(root: Path, split: str, wanted: str) -> DataError:
    folder = root / "hoda" / "DigitDB"
    present = sorted(p.name for p in folder.glob("*.cdb")) if folder.is_dir() else []
    if not present:
        problem = (
            f"no Hoda .cdb files in {folder} (expected '{TEST_FILE}' and '{REMAINING_FILE}' or '{TRAIN_FILE}')"
        )
    else:
        problem = f"the {split} split needs {wanted} in {folder}, which holds only {', '.join(present)}"
    return DataError(f"hoda: {problem}; " + WHERE_TO_GET.format(name="hoda"))


def load_hoda(
    root: Path, split: str, image_size: int, download: bool, preprocess: str = DEFAULT_PREPROCESS
) -> tuple[torch.Tensor, torch.Tensor, list[dict], str]:
    """uint8 (N, S, S) images (MNIST-style, or as HodaDatasetReader makes them), labels, files read and note (cached)."""
    path = hoda_split_file(root, split, download)
    sha = file_sha256(path)
    if sha != KNOWN_SHA256.get(path.name, sha):
        log.warning("%s has sha256 %s, not the published %s; reading it anyway", path, sha, KNOWN_SHA256[path.name])

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        crops, labels = read_hoda_cdb(path)
        return torch.from_numpy(PREPROCESS[preprocess](crops, image_size)), torch.from_numpy(labels)

    # Keyed by the choice ("preprocessing": cache_key's own "preprocess" is its version), left out for the
    # default so that caches built before dataset.preprocess existed stay valid.
    choice = {} if preprocess == DEFAULT_PREPROCESS else {"preprocessing": preprocess}
    key = cache_key(dataset="hoda", sha256=sha, image_size=image_size, **choice)
    images, labels = cached_build("hoda", key, image_size, build, {"source": path.name, "sha256": sha, "preprocess": preprocess})
    note = ""
    if split == "train" and path.name == REMAINING_FILE:
        note = f"Hoda '{TRAIN_FILE}' not found; training on {REMAINING_FILE} ({len(labels):,} images), '{TEST_FILE}' held out"
        log.warning(note)
    return images, labels, [file_record(path, sha)], note
