"""The stubs: `mypy --strict` passes on a script that uses the whole API, and the script runs."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import cx
import typed_usage

HERE = pathlib.Path(__file__).parent


def test_mypy_strict_passes_on_the_whole_api() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         str(HERE / "typed_usage.py")],
        capture_output=True, text=True, cwd=HERE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_a_wrong_call(tmp_path: pathlib.Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import cx\ncx.Engine.in_memory().decide('c', channel=3)\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(wrong)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "channel" in result.stdout


def test_the_typed_script_runs_on_both_backends() -> None:
    typed_usage.main()
    typed_usage.main(cx._native.fresh_postgres_database())
