#!/usr/bin/env python3
"""Exec-to-ready time and size of every Lambda binary.

"Ready" is the moment the function first polls the Lambda Runtime API for an
invocation (GET /2018-06-01/runtime/invocation/next): initialisation is over. A tiny
stand-in Runtime API on localhost records that moment; each binary is started 20 times
and the median is printed.

The functions ship for arm64. On another machine an arm64 binary runs under qemu-user
(`qemu-aarch64` with Debian's arm64 glibc in /usr/aarch64-linux-gnu), and its times are
marked "emulated": they show what start-up does, not how fast Graviton does it.
"""
import http.server
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time

READY = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            READY.set()
            time.sleep(0.2)  # hold the poll, as Lambda does, until the process is killed
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"


def launcher(binary):
    """How to exec `binary` here: ([], False) natively, (qemu, True) for an arm64
    binary on another machine, None when it cannot run here."""
    with open(binary, "rb") as f:
        header = f.read(20)
    machine = int.from_bytes(header[18:20], "little")  # ELF e_machine
    if machine != 0xB7 or platform.machine() in ("aarch64", "arm64"):
        return [], False
    qemu = shutil.which("qemu-aarch64")
    if qemu and os.path.isdir(AARCH64_SYSROOT):
        return [qemu, "-L", AARCH64_SYSROOT], True
    return None


def start_until_ready(command, env):
    """Milliseconds from exec to the first poll, or None if the process exits or
    does not poll within 5 s."""
    READY.clear()
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not READY.wait(0.01):
            if proc.poll() is not None or time.perf_counter() - start > 5:
                return None
        return (time.perf_counter() - start) * 1000
    finally:
        proc.kill()
        proc.wait()


def main():
    root = pathlib.Path(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_port}",
               AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               TABLE_NAME="bench", RUST_LOG="warn",
               # What the other functions read at start (template.yaml sets the real ones).
               # The secrets themselves come from Secrets Manager at cold start, so the
               # functions that read them report "needs AWS at start" here.
               CURSOR_SECRET_ARN="bench-cursor", SIGNIN_SECRET_ARN="bench-signin",
               CODE_FROM_ADDRESS="no-reply@example.org",
               USER_POOL_ID="us-east-1_bench", SIGNING_KEY_ID="bench-key",
               PAYER_ID="999996666", PAYER_NAME="Bench Plan", FHIR_BASE_URL="https://bench.example.org")
    print(f"{'function':32} {'ready (median of 20)':>22} {'size':>10}")
    for binary in sorted(root.glob("*/bootstrap")):
        size = binary.stat().st_size / 1_000_000
        how = launcher(binary)
        if how is None:
            print(f"{binary.parent.name:32} {'arm64: no qemu-aarch64':>22} {size:8.1f} MB")
            continue
        prefix, emulated = how
        times = []
        for _ in range(20):
            ready = start_until_ready(prefix + [str(binary)], env)
            if ready is None:
                break
            times.append(ready)
        if times:
            note = " (emulated)" if emulated else ""
            print(f"{binary.parent.name:32} {statistics.median(times):19.1f} ms {size:8.1f} MB{note}")
        else:
            # The authorization server reads its KMS public key and the portal app's
            # record, and the FHIR and trigger functions their secrets (Secrets
            # Manager), before they serve, so they cannot become ready without AWS.
            print(f"{binary.parent.name:32} {'needs AWS at start':>22} {size:8.1f} MB")
    server.shutdown()


if __name__ == "__main__":
    main()
