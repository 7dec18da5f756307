#!/usr/bin/env python3
"""Load test of the local server: requests/s, p50/p99 latency and peak RSS.

Starts `patient-access serve` on a fresh data directory, mints a token with
`patient-access token`, and runs wrk (2 threads, 64 connections, 15 s) against
ExplanationOfBenefit?patient=X&_count=20&_include=ExplanationOfBenefit:coverage.
"""
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    binary = sys.argv[1]
    if "--usage-on-off" in sys.argv[2:]:
        # The added latency of recording usage metrics: the same load with recording
        # on, then off (`serve --no-usage-metrics`), each on a fresh data directory.
        on = run(binary, [])
        off = run(binary, ["--no-usage-metrics"])
        print(f"usage recording adds p99 {on[2] - off[2]:+.2f} ms, p50 {on[1] - off[1]:+.2f} ms, "
              f"requests/s {on[0] - off[0]:+,.0f} (on {on[0]:,.0f}, off {off[0]:,.0f})")
    else:
        run(binary, [])


def millis(text):
    """wrk's latency figure ("812.00us", "18.27ms", "1.02s") in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        return float("nan")
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wait_until_up(url, seconds):
    """Polls `url` until the server answers, for at most `seconds`."""
    for _ in range(seconds * 10):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)


def wrk(url, label, server_pid, args=()):
    """One wrk run (2 threads, 64 connections, 15 s): prints and returns (requests/s,
    p50 ms, p99 ms)."""
    out = subprocess.check_output(["wrk", "-t2", "-c64", "-d15s", "--latency", *args, url], text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(f"{label}: {rps:,.0f} requests/s  p50 {p50}  p99 {p99}  peak RSS {peak_rss_mb(server_pid):.0f} MB"
          + (f"  NON-2xx: {errors.group(1)}" if errors else ""), flush=True)
    return rps, millis(p50), millis(p99)


def run(binary, serve_args):
    """One wrk run against a fresh server; returns (requests/s, p50 ms, p99 ms)."""
    data = tempfile.mkdtemp(prefix="pa-bench-")
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--data", data, "--port", str(port), "--allow-dev-tokens",
                               "--client-requests-per-minute", "0"]
                              + serve_args,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = f"http://localhost:{port}"
        wait_until_up(base + "/metadata", 30)
        member = subprocess.check_output([binary, "members", "--data", data], text=True).split()[0]
        token = subprocess.check_output(
            [binary, "token", "--data", data, "--patient", member, "--scope", "patient/*.rs"], text=True).strip()
        url = f"{base}/ExplanationOfBenefit?patient={member}&_count=20&_include=ExplanationOfBenefit:coverage"
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
        body = urllib.request.urlopen(req).read()
        entries = body.count(b'"fullUrl"')
        print(f"response: {len(body)} bytes, {entries} entries")
        label = " ".join(["http search"] + serve_args)
        return wrk(url, label, server.pid, ["-H", "Authorization: Bearer " + token])
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
