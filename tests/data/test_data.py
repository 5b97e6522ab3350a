"""ganbench.data on the real files in shared/data, plus small .cdb files built here to break on purpose."""

from __future__ import annotations

import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganbench.data as gd
from ganbench.data import DATASETS, DataError, load_dataset, mnist_style, read_hoda_cdb
from ganbench.files import atomic_write
from ganbench.data.download import download_file, verify_checksum
from ganbench.data.preprocess import mnist_style_batch
from ganbench.data.hoda import KNOWN_SHA256
from ganbench.data.sign_digits import class_images, split_files

TEST_FILE = "Test 20000.cdb"
REMAINING_FILE = "RemainingSamples.cdb"
REMAINING_COUNTS = [2070, 2330, 1923, 2334, 2333, 2110, 2254, 2363, 2264, 2371]


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session, so each full Hoda file is decoded and preprocessed once."""
    return tmp_path_factory.mktemp("ganbench-cache")


@pytest.fixture
def warm_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANBENCH_CACHE", str(session_cache))
    return session_cache


def hoda_file(data_root: Path, name: str) -> Path:
    return data_root / "hoda" / "DigitDB" / name


def reference_decode(raw: bytes, every: int) -> dict[int, tuple[int, np.ndarray]]:
    """Straightforward reader of a variable-size type-0 .cdb: run by run, row by row."""
    decoded = {}
    offset, index = 1024, 0
    while offset < len(raw):
        label, width, height = raw[offset + 1], raw[offset + 2], raw[offset + 3]
        count = raw[offset + 4] | raw[offset + 5] << 8
        if index % every == 0:
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
            decoded[index] = (label, image)
        offset += 6 + count
        index += 1
    return decoded


def rle_rows(image: np.ndarray) -> bytes:
    """Hoda run-length code of a 0/255 image: per row, runs alternate background/ink from background."""
    out = bytearray()
    for row in image > 0:
        ink, x = False, 0
        while x < len(row):
            end = x
            while end < len(row) and row[end] == ink:
                end += 1
            out.append(end - x)  # widths fit in a byte, so every run does too
            x, ink = end, not ink
    return bytes(out)


def make_cdb(
    records: list[tuple[int, np.ndarray]],
    fixed: tuple[int, int] | None = None,
    image_type: int = 0,
    total: int | None = None,
) -> bytes:
    """A .cdb file's bytes; fixed=(H, W) writes fixed-size records (no per-record width/height)."""
    height, width = fixed or (0, 0)
    counts = np.bincount([label for label, _ in records], minlength=128)[:128].astype("<u4")
    header = struct.pack("<HBBBBI", 2005, 8, 4, height, width, len(records) if total is None else total)
    header += counts.tobytes() + bytes([image_type]) + b"made by test_data.py".ljust(256, b"\0") + bytes(245)
    assert len(header) == 1024
    body = bytearray()
    for label, image in records:
        data = rle_rows(image) if image_type == 0 else image.T.tobytes()
        body += bytes([0xFF, label])
        if fixed is None:
            body += bytes([image.shape[1], image.shape[0]])
        body += struct.pack("<H", len(data)) + data
    return header + bytes(body)


def random_digits(count: int, seed: int = 0) -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(count):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        records.append((i % 10, (rng.random(shape) < 0.4).astype(np.uint8) * 255))
    return records


def assert_one_line(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ---------------------------------------------------------------- the .cdb reader on real files


@pytest.mark.parametrize(
    "name, counts", [(TEST_FILE, [2000] * 10), (REMAINING_FILE, REMAINING_COUNTS)], ids=["test20000", "remaining"]
)
def test_read_hoda_real_files(data_root: Path, name: str, counts: list[int]) -> None:
    images, labels = read_hoda_cdb(hoda_file(data_root, name))
    assert len(images) == len(labels) == sum(counts)
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=10).tolist() == counts
    heights = np.array([img.shape[0] for img in images])
    widths = np.array([img.shape[1] for img in images])
    assert heights.min() >= 4 and heights.max() <= 64
    assert widths.min() >= 3 and widths.max() <= 54
    assert all(img.dtype == np.uint8 and img.ndim == 2 for img in images)
    values = np.unique(np.concatenate([img.ravel() for img in images[::97]]))
    assert values.tolist() == [0, 255]


@pytest.mark.parametrize("name", [TEST_FILE, REMAINING_FILE])
def test_vectorised_decoder_matches_reference(data_root: Path, name: str) -> None:
    path = hoda_file(data_root, name)
    images, labels = read_hoda_cdb(path)
    reference = reference_decode(path.read_bytes(), every=53)
    assert len(reference) > 300
    for index, (label, image) in reference.items():
        assert labels[index] == label
        np.testing.assert_array_equal(images[index], image)


# ---------------------------------------------------------------- the .cdb reader on built files


def test_round_trip_variable_size(tmp_path: Path) -> None:
    records = random_digits(60)
    ink_rows = np.full((3, 255), 255, dtype=np.uint8)  # widest rows: runs 0, 255 (zero-length background)
    ink_rows[1] = 0
    records.append((3, ink_rows))
    path = tmp_path / "variable.cdb"
    path.write_bytes(make_cdb(records))
    images, labels = read_hoda_cdb(path)
    assert labels.tolist() == [label for label, _ in records]
    for got, (_, want) in zip(images, records, strict=True):
        np.testing.assert_array_equal(got, want)


def test_round_trip_fixed_size_and_grayscale(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    binary = [(i % 10, (rng.random((12, 9)) < 0.5).astype(np.uint8) * 255) for i in range(25)]
    path = tmp_path / "fixed.cdb"
    path.write_bytes(make_cdb(binary, fixed=(12, 9)))
    images, _ = read_hoda_cdb(path)
    assert all(np.array_equal(got, want) for got, (_, want) in zip(images, binary, strict=True))

    gray = [(i % 10, rng.integers(0, 256, (7 + i % 3, 5 + i % 4), dtype=np.uint8)) for i in range(12)]
    path = tmp_path / "gray.cdb"
    path.write_bytes(make_cdb(gray, image_type=1))
    images, labels = read_hoda_cdb(path)
    assert labels.tolist() == [label for label, _ in gray]
    assert all(np.array_equal(got, want) for got, (_, want) in zip(images, gray, strict=True))


def test_reader_errors_name_file_and_offset(tmp_path: Path) -> None:
    records = random_digits(4, seed=2)
    good = make_cdb(records)
    second = 1024 + 6 + len(rle_rows(records[0][1]))  # byte offset of record 1
    last = len(good) - 6 - len(rle_rows(records[-1][1]))

    cases = {
        "short.cdb": (good[:100], "byte offset 100"),
        "truncated.cdb": (good[:-3], f"byte offset {last}"),
        "badstart.cdb": (good[:second] + b"\xfe" + good[second + 1 :], f"byte offset {second}"),
        "label.cdb": (good[: second + 1] + b"\x0c" + good[second + 2 :], f"byte offset {second + 1}"),
        "count.cdb": (make_cdb(records, total=5), "header says 5"),
    }
    for name, (blob, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(DataError) as err:
            read_hoda_cdb(path)
        assert_one_line(err, name, expected)


def test_reader_rejects_runs_that_miss_the_width(tmp_path: Path) -> None:
    image = np.zeros((2, 4), dtype=np.uint8)
    good = make_cdb([(1, image)])
    # Row 0 coded as runs 3, 3 (6 pixels for a width of 4), row 1 as 2: same total, wrong rows.
    bad = good[:1024] + bytes([0xFF, 1, 4, 2]) + struct.pack("<H", 3) + bytes([3, 3, 2])
    path = tmp_path / "rows.cdb"
    path.write_bytes(bad)
    with pytest.raises(DataError) as err:
        read_hoda_cdb(path)
    assert_one_line(err, "rows.cdb", "byte offset 1024", "width 4")


def test_reader_rejects_a_truncated_real_file(data_root: Path, tmp_path: Path) -> None:
    path = tmp_path / TEST_FILE
    path.write_bytes(hoda_file(data_root, TEST_FILE).read_bytes()[:5000])
    with pytest.raises(DataError) as err:
        read_hoda_cdb(path)
    assert_one_line(err, TEST_FILE, "truncated", "byte offset")


# ---------------------------------------------------------------- preprocessing


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    mass = image.astype(np.float64)
    ys, xs = np.indices(image.shape)
    return (mass * ys).sum() / mass.sum(), (mass * xs).sum() / mass.sum()


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.parametrize("size, box", [(28, 20), (32, 20), (8, 6), (64, 46)])
def test_mnist_style_centres_and_scales(data_root: Path, size: int, box: int) -> None:
    images, _ = read_hoda_cdb(hoda_file(data_root, TEST_FILE))
    for raw in images[::400]:
        out = mnist_style(raw, size)
        assert out.shape == (size, size) and out.dtype == np.uint8
        assert out.max() > 128
        cy, cx = centre_of_mass(out)
        assert abs(cy - (size - 1) / 2) <= 1 and abs(cx - (size - 1) / 2) <= 1
        height, width = ink_box(out)
        assert max(height, width) <= box and max(height, width) >= box - 1


def test_mnist_style_edge_cases() -> None:
    assert not mnist_style(np.zeros((10, 7), dtype=np.uint8)).any()  # no ink: blank, no crash
    dot = np.zeros((5, 5), dtype=np.uint8)
    dot[0, 4] = 255
    assert mnist_style(dot, 32).shape == (32, 32)
    bar = np.full((1, 50), 255, dtype=np.uint8)  # extreme aspect ratio
    assert ink_box(mnist_style(bar))[1] == 20
    with pytest.raises(DataError):
        mnist_style(dot, 7)


@pytest.mark.parametrize("size", [28, 32, 9])
def test_the_batched_mnist_style_gives_the_one_image_pixels(data_root: Path, size: int) -> None:
    # The cached datasets (and every published number) were built image by image: the batch must not move a pixel.
    images, _ = read_hoda_cdb(hoda_file(data_root, TEST_FILE))
    speck = np.zeros((1, 60), np.uint8)
    speck[0, [0, 59]] = 1  # ink that the resize wipes out: placed by the box centre
    sample = list(images[:1500]) + [np.zeros((6, 4), np.uint8), speck]
    expected = np.stack([mnist_style(raw, size) for raw in sample])
    assert np.array_equal(mnist_style_batch(sample, size), expected)


# ---------------------------------------------------------------- load_dataset


def test_load_hoda_splits(data_root: Path, warm_cache: Path) -> None:
    train = load_dataset("hoda", "train", 28, root=data_root)
    assert train.images.shape == (22352, 1, 28, 28) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64
    assert train.labels.bincount().tolist() == REMAINING_COUNTS
    assert [Path(f["path"]).name for f in train.files] == [REMAINING_FILE]
    assert train.files[0]["sha256"] == KNOWN_SHA256[REMAINING_FILE]
    assert "Train 60000.cdb" in train.note and REMAINING_FILE in train.note
    assert float(train.images.min()) == -1.0 and float(train.images.max()) == 1.0

    test = load_dataset("hoda", "test", 28, root=data_root)
    assert test.images.shape == (20000, 1, 28, 28) and test.note == ""
    assert [Path(f["path"]).name for f in test.files] == [TEST_FILE]
    params = test.params()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert params["num_images"] == "20000" and params["files"] == f"{TEST_FILE}:{KNOWN_SHA256[TEST_FILE][:12]}"

    limited = load_dataset("hoda", "test", 28, root=data_root, limit=100)
    assert torch.equal(limited.images, test.images[:100]) and limited.params()["num_images"] == "100"


def test_hoda_prefers_train_60000_and_never_writes_to_data(data_root: Path, tmp_path: Path, warm_cache: Path) -> None:
    folder = tmp_path / "root" / "hoda" / "DigitDB"
    folder.mkdir(parents=True)
    (folder / REMAINING_FILE).symlink_to(hoda_file(data_root, REMAINING_FILE))
    before = sorted(p.name for p in (tmp_path / "root").rglob("*"))
    assert load_dataset("hoda", "train", root=tmp_path / "root").files[0]["path"].endswith(REMAINING_FILE)
    assert sorted(p.name for p in (tmp_path / "root").rglob("*")) == before
    with pytest.raises(DataError) as err:  # no test file here: the message says which one is wanted
        load_dataset("hoda", "test", root=tmp_path / "root")
    assert_one_line(err, TEST_FILE, REMAINING_FILE, "GANBENCH_DATA")

    records = random_digits(30, seed=3)
    (folder / "Train 60000.cdb").write_bytes(make_cdb(records))
    before = sorted(p.name for p in (tmp_path / "root").rglob("*"))
    train = load_dataset("hoda", "train", 32, root=tmp_path / "root")
    assert train.images.shape == (30, 1, 32, 32) and train.note == ""
    assert train.labels.tolist() == [label for label, _ in records]
    assert sorted(p.name for p in (tmp_path / "root").rglob("*")) == before


def test_load_mnist_falls_back_to_test_split(
    data_root: Path, warm_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        train = load_dataset("mnist", "train", 28, root=data_root)
    assert "training on the test split" in train.note
    assert any("test split" in record.getMessage() for record in caplog.records)
    assert train.images.shape == (10000, 1, 28, 28)
    assert [Path(f["path"]).name for f in train.files] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    test = load_dataset("mnist", "test", 32, root=data_root, limit=500)
    assert test.images.shape == (500, 1, 32, 32) and test.note == ""
    border = torch.cat([test.images[..., :2, :].flatten(), test.images[..., -2:, :].flatten()])
    assert torch.all(border == -1.0)  # 28x28 zero-padded by 2 pixels
    assert torch.equal(test.images[..., 2:-2, 2:-2], train.images[:500])
    assert test.labels.dtype == torch.int64 and test.labels.max() <= 9


def test_load_sign_digits_split(data_root: Path, warm_cache: Path) -> None:
    train = load_dataset("sign_digits", "train", 32, root=data_root)
    test = load_dataset("sign_digits", "test", 32, root=data_root)
    assert train.images.shape == (1653, 1, 32, 32) and test.images.shape == (409, 1, 32, 32)
    assert -1.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert train.images.std() > 0.1
    per_class = class_images(data_root / "sign_digits" / "Dataset")
    assert test.labels.bincount().tolist() == [len(per_class[str(c)]) // 5 for c in range(10)]
    train_files, _ = split_files(per_class, "train")
    test_files, _ = split_files(per_class, "test")
    assert not set(train_files) & set(test_files) and len(train_files) + len(test_files) == 2062
    assert train.labels[:10].tolist() == list(range(10))  # classes interleaved: a limit stays balanced
    assert load_dataset("sign_digits", "train", 32, root=data_root, limit=20).labels.bincount().tolist() == [2] * 10


def test_load_argument_errors(data_root: Path, warm_cache: Path) -> None:
    for kwargs in ({"limit": 0}, {"limit": -5}, {"image_size": 4}, {"split": "val"}):
        with pytest.raises(DataError):
            load_dataset("mnist", root=data_root, **kwargs)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", root=data_root)
    assert_one_line(err, "cifar10", "hoda")


@pytest.mark.parametrize("name", DATASETS)
def test_missing_data_is_one_line(name: str, tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(name, "test", root=tmp_path / "nowhere")
    assert_one_line(err, name, str(tmp_path / "nowhere"), "GANBENCH_DATA", "download")


# ---------------------------------------------------------------- cache


def test_second_load_is_served_from_cache(data_root: Path, cache_dir: Path) -> None:
    first = load_dataset("mnist", "test", 28, root=data_root)
    entries = list((cache_dir / "data").glob("*.pt"))
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    second = load_dataset("mnist", "test", 28, root=data_root)
    assert list((cache_dir / "data").glob("*.pt")) == entries and entries[0].stat().st_mtime_ns == stamp
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    load_dataset("mnist", "test", 32, root=data_root)
    assert len(list((cache_dir / "data").glob("*.pt"))) == 2  # keyed by image size too


def test_corrupt_cache_is_rebuilt(data_root: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    expected = load_dataset("mnist", "test", 28, root=data_root)
    (entry,) = (cache_dir / "data").glob("*.pt")
    for damage in (b"not a torch file", None):
        if damage is None:  # a readable file with the wrong shape
            torch.save({"images": torch.zeros(3, 5, 5, dtype=torch.uint8), "labels": torch.zeros(3)}, entry)
        else:
            entry.write_bytes(damage)
        with caplog.at_level(logging.WARNING):
            again = load_dataset("mnist", "test", 28, root=data_root)
        assert torch.equal(again.images, expected.images)
        assert "rebuilding" in caplog.text
        assert torch.load(entry, weights_only=True)["images"].shape == (10000, 28, 28)


def test_failing_load_leaves_no_cache(data_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "root" / "hoda" / "DigitDB"
    folder.mkdir(parents=True)
    (folder / TEST_FILE).write_bytes(hoda_file(data_root, TEST_FILE).read_bytes()[:50_000])
    with pytest.raises(DataError):
        load_dataset("hoda", "test", root=tmp_path / "root")
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]

    target = tmp_path / "out" / "entry.pt"

    def write_half_then_fail(handle) -> None:
        handle.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(target, write_half_then_fail)
    assert list(target.parent.iterdir()) == []


# ---------------------------------------------------------------- sign_digits folders, roots, downloads


def make_sign_tree(root: Path, per_class: int = 5) -> Path:
    dataset = root / "sign_digits" / "Dataset"
    for cls in range(10):
        (dataset / str(cls)).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (100, 100), (20 * cls, 10 * i, 128)).save(dataset / str(cls) / f"IMG_{i:03d}.JPG")
    return dataset


def test_sign_digits_folder_errors(tmp_path: Path, cache_dir: Path) -> None:
    dataset = make_sign_tree(tmp_path / "root")
    small = load_dataset("sign_digits", "test", 16, root=tmp_path / "root")
    assert small.images.shape == (10, 1, 16, 16) and small.labels.tolist() == list(range(10))

    (dataset / "3" / "IMG_002.JPG").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError) as err:
        load_dataset("sign_digits", "train", 16, root=tmp_path / "root")
    assert_one_line(err, "IMG_002.JPG")

    shutil.rmtree(dataset / "7")
    (dataset / "7").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset("sign_digits", "train", 16, root=tmp_path / "root")
    assert_one_line(err, str(dataset / "7"), "no images")


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path / "from_env"))
    assert gd.data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert gd.data_root() == tmp_path / "from_env"
    monkeypatch.delenv("GANBENCH_DATA")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert gd.data_root() == project / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert gd.data_root() == tmp_path / "shared" / "data"


def test_cache_root_from_env(cache_dir: Path) -> None:
    assert not cache_dir.exists()
    assert gd.cache_root() == cache_dir and cache_dir.is_dir()


def test_checksum_verification(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"hello\n")
    verify_checksum(path, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    verify_checksum(path, "b1946ac92492d2347c6235b4d2611184", "md5")
    with pytest.raises(DataError) as err:
        verify_checksum(path, "0" * 64)
    assert_one_line(err, "blob.bin", "sha256")


def test_download_is_verified_and_atomic(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"payload")
    dest = tmp_path / "dl" / "file.bin"

    def reject(tmp: Path) -> None:
        raise DataError("wrong bytes")

    with pytest.raises(DataError) as err:
        download_file([source.as_uri()], dest, reject)
    assert_one_line(err, "file.bin", "wrong bytes")
    assert list(dest.parent.iterdir()) == []  # no partial file under any name

    missing = (tmp_path / "missing.bin").as_uri()
    assert download_file([missing, source.as_uri()], dest, lambda tmp: None) == dest  # falls through mirrors
    assert dest.read_bytes() == b"payload" and len(list(dest.parent.iterdir())) == 1


def test_error_messages_have_no_newlines() -> None:
    assert str(DataError("line one\nline two")) == "line one line two"
    assert str(DataError("a\r\n  b in /x/two  spaces")) == "a b in /x/two  spaces"
