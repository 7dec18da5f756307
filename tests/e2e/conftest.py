"""The local runner for the end-to-end tests: `target/debug/patient-access serve` on a
free port over a fresh data directory, its console captured (the one-time codes are
printed there), always stopped at the end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import shutil
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "debug" / "patient-access"
# The FHIR handlers reuse a grant-status answer this long; production uses 60 s.
GRANT_CACHE_SECONDS = 2
START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Console:
    """The server's merged stdout and stderr, read by a thread; lines can be awaited."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<console closed>")
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def wait_for(self, pattern: re.Pattern, after: int = 0, timeout: float = 10) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if found := pattern.search(line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.lines[-1:] == ["<console closed>"]:
                    raise AssertionError(
                        f"no console line matching {pattern.pattern!r} within {timeout} s; last lines:\n"
                        + "\n".join(self.lines[-20:])
                    )
                self._changed.wait(left)

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


class Runner:
    def __init__(self, base_url: str, data_dir: str, console: Console) -> None:
        self.base_url = base_url
        self.data_dir = data_dir
        self.console = console

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BINARY), *args, "--data", self.data_dir],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"patient-access {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def register_app(self, name: str, redirect_uri: str, confidential: bool = False) -> tuple[str, str | None]:
        """`apps register` through the CLI while serve runs: (client_id, secret)."""
        args = ["apps", "register", "--name", name, "--redirect-uri", redirect_uri,
                "--privacy-policy", "https://e2e.example/privacy", "--attested"]
        if confidential:
            args.append("--confidential")
        lines = self.cli(*args).strip().splitlines()
        client_id = lines[-1].strip()
        secret = None
        if confidential:
            secret_line = next(line for line in lines if line.startswith("client_secret"))
            secret = secret_line.rsplit(" ", 1)[-1]
        return client_id, secret

    def members(self) -> list[dict]:
        return [json.loads(line) for line in self.cli("members", "--details").splitlines() if line.strip()]


def ensure_binary() -> None:
    if BINARY.exists():
        return
    subprocess.run(["cargo", "build", "-p", "patient-access"], cwd=REPO, check=True, timeout=1800)


@pytest.fixture(scope="session")
def runner():
    ensure_binary()
    data_dir = tempfile.mkdtemp(prefix="patient-access-e2e-")
    port = free_port()
    base_url = f"http://localhost:{port}"
    process = subprocess.Popen(
        [str(BINARY), "serve", "--data", data_dir, "--port", str(port),
         "--grant-cache-seconds", str(GRANT_CACHE_SECONDS)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    console = Console(process.stdout)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"patient-access serve exited early:\n{console.text()}")
            try:
                if requests.get(f"{base_url}/metadata", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"/metadata did not answer within {START_TIMEOUT} s:\n{console.text()}")
            time.sleep(0.2)
        yield Runner(base_url, data_dir, console)
    finally:
        stop(process)
        shutil.rmtree(data_dir, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    """SIGINT to the server's process group (graceful shutdown), SIGKILL after 10 s."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
    if process.stdout:
        process.stdout.close()
