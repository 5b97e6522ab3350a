"""The installed package carries its configs and grids: conf/ and sweeps/ at the top level, no symlinks."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


def declared_packages() -> list[str]:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_under_src_is_declared_and_conf_and_sweeps_are_top_level_folders():
    src = PROJECT / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in (src / "ganbench").rglob("__init__.py")}
    assert found | {"ganbench.conf", "ganbench.sweeps"} == set(declared_packages())
    for folder in ("conf", "sweeps"):
        assert (PROJECT / folder).is_dir() and not (PROJECT / folder).is_symlink()
    assert not [p for p in PROJECT.rglob("*") if p.is_symlink() and ".venv" not in p.parts and ".git" not in p.parts]
    assert not (src / "ganbench" / "conf").exists()


@pytest.mark.slow
def test_the_wheel_holds_the_configs_the_grids_and_the_report_template(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(PROJECT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("ganbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"ganbench/conf/config.yaml", "ganbench/conf/model/dcgan.yaml", "ganbench/conf/experiment/fast_hoda.yaml",
            "ganbench/sweeps/smoke.yaml", "ganbench/report/templates/leaderboard.html.j2"} <= names


def test_the_app_composes_a_ready_grid_from_any_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ganbench", "sweep=smoke", "--cfg", "job"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "limit: 4800" in proc.stdout  # from sweeps/smoke.yaml
