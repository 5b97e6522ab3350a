"""Atomic writes: the file is whole or absent, never half-written, and no temp file stays behind."""

import json
import os
import subprocess
import sys

import pytest

from ganbench.files import WriteError, atomic_write, atomic_write_json, atomic_write_text


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]
    atomic_write_json(tmp_path / "x.json", {"b": 1, "a": [2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [2], "b": 1}


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def fail(handle):
        handle.write(b"half")
        raise error

    expected = WriteError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as raised:
        atomic_write(path, fail, hint="set x.dir elsewhere")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    if expected is WriteError:
        assert str(raised.value) == f"could not write out.bin to {tmp_path} (No space left on device); set x.dir elsewhere"


def test_a_temp_file_left_by_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".out.txt.{dead}.abc123.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".out.txt.{os.getpid()}.def456.tmp"  # this process's own: another write in flight
    live.write_bytes(b"mine")
    atomic_write_text(tmp_path / "out.txt", "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.txt", live.name])
