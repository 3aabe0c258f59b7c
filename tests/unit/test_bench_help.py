"""Every benchmark script answers --help with its usage, without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))  # _x.py: shared code


def test_there_are_bench_scripts():
    assert len(SCRIPTS) >= 9, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_a_bench_script_answers_help_with_its_usage(script, tmp_path):
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # creates nothing where it is run from, nor measures anything
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script.name}"), done.stdout
    assert "-h, --help" in done.stdout
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert list(tmp_path.iterdir()) == []
