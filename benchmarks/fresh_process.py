"""What the benchmarks share: a measurement in a fresh Python process, and the machine's load.

The benchmark scripts run as ``python benchmarks/<script>.py``, so this module imports as ``fresh_process``.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "run_json_child", "uptime"]


def run_json_child(command: list[str], label: dict[str, str]) -> dict:
    """Run ``command`` in a fresh process; its last line of stdout is a JSON object of measurements.

    Parameters
    ----------
    command
        The child's command line (usually the benchmark script itself with ``--child``).
    label
        Keys naming the measurement (e.g. ``{"model": name}``), returned with the error when the child fails.

    Returns
    -------
    dict
        The child's JSON object plus ``process``, the seconds of the whole child process; or ``label`` with
        ``error``, the child's last line of stderr, when it exits with an error.
    """
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {**label, "error": lines[-1] if lines else f"exit status {done.returncode}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def uptime() -> str:
    """The machine's load, as ``uptime`` prints it."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
