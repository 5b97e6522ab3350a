"""Atomic writes: the file is whole or absent, never half-written, and no temp file stays behind."""

import json

import pytest

from ganbench.files import atomic_write, atomic_write_json, atomic_write_text


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

    with pytest.raises(type(error)):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
