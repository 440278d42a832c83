"""The supervisor's watchdog on a real (small) process: `python -m http.server` stands where Triton
does in `llmops serve`; the live drill with Triton itself is tests/live/test_faults.py."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateway.supervisor import ManagedProcess
from tests.support import procs


def _server(tmp_path: Path) -> tuple[ManagedProcess, int]:
    port = procs.free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    return ManagedProcess("http", argv, f"http://127.0.0.1:{port}/"), port


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s:.0f}s")


def test_watchdog_restarts_a_killed_process_and_stop_ends_it(tmp_path: Path) -> None:
    proc, port = _server(tmp_path)
    proc.start(30, log_path=tmp_path / "http.log")
    try:
        proc.supervise(30, backoff_s=0.1)
        assert proc.proc is not None
        first = proc.proc.pid
        os.killpg(first, signal.SIGKILL)
        _wait(lambda: proc.restarts == 1, "the watchdog restarted the process")
        assert proc.proc.pid != first and proc.proc.poll() is None
        assert procs.pids_with_args("http.server", str(port)) == [proc.proc.pid]
    finally:
        proc.stop(grace_s=5)
    assert proc.proc.poll() is not None
    assert procs.pids_with_args("http.server", str(port)) == []
    time.sleep(1.0)  # a watchdog that survived stop() would have restarted it by now
    assert procs.pids_with_args("http.server", str(port)) == [] and proc.restarts == 1


def test_a_process_that_keeps_failing_to_start_is_retried_not_fatal(tmp_path: Path) -> None:
    proc, port = _server(tmp_path)
    proc.start(30)
    try:
        proc.supervise(2, backoff_s=0.1)
        assert proc.proc is not None
        proc.argv = [sys.executable, "-c", "raise SystemExit(3)"]  # every restart now fails at once
        os.killpg(proc.proc.pid, signal.SIGKILL)
        time.sleep(1.0)
        assert proc.restarts == 0 and proc.proc.poll() is not None
        proc.argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        _wait(lambda: proc.restarts == 1, "the watchdog restarted it once it could start again")
    finally:
        proc.stop(grace_s=5)
    assert procs.pids_with_args("http.server", str(port)) == []


def test_watchdog_restarts_a_process_that_stops_answering(tmp_path: Path) -> None:
    """Alive but silent (SIGSTOP: the process never exits): killed after `hang_s`, then restarted."""
    proc, port = _server(tmp_path)
    proc.start(30)
    try:
        proc.supervise(30, backoff_s=0.1, hang_s=2.0, probe_every_s=0.5)
        assert proc.proc is not None
        first = proc.proc.pid
        time.sleep(2.5)  # answering all along: probes alone never restart it
        assert proc.restarts == 0 and proc.proc.pid == first
        os.killpg(first, signal.SIGSTOP)
        _wait(lambda: proc.restarts == 1, "the watchdog restarted the stopped process")
        assert proc.proc.pid != first and proc._answers(5)
        assert procs.pids_with_args("http.server", str(port)) == [proc.proc.pid]
    finally:
        proc.stop(grace_s=5)
    assert procs.pids_with_args("http.server", str(port)) == []
