#!/usr/bin/env python3
"""Load test of the public Provider Directory through the local server (issue 10).

Generates a directory of N practitioners (N PractitionerRoles, 0.3 N Locations in
500 postal codes, 20 networks) as one NDJSON snapshot, starts `patient-access serve`,
loads the snapshot with `patient-access directory load` (through the server), and runs wrk
(2 threads, 64 connections, 15 s each) on:

- the same specialty + postal code + _include search again and again (what the
  response cache serves: an app's or a test kit's repeated query);
- searches of that shape that never repeat (specialty x postal code x page size),
  so that every request is computed, twice: a first pass, whose parts (key
  listings, term members, records) are read from the store as they are first
  needed, and a second pass over new page sizes, where those reads come from
  memory but every answer is still computed;
- the same `Location?near=...|5|km` search again and again;
- `Location?near=` searches that never repeat (centre on a 0.001-degree grid over the
  generated area, 5 km), so that every request is computed.

Prints requests/s, p50 and p99 for each, the load time and the server's peak RSS.
Usage: bench_directory_http.py BINARY [N]   (N defaults to 100000)
DIRECTORY_BENCH_DATA=DIR reuses a data directory an earlier run loaded (its path is
printed), skipping the generation and the load.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_http import free_port, wait_until_up, wrk

SPECIALTIES = ["207Q00000X", "207R00000X", "207RC0000X", "207X00000X", "207P00000X",
               "1223G0001X", "208D00000X", "207V00000X", "2084P0800X", "208000000X"]
NETWORK_EXTENSION = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference"
ORG_TYPE = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS"


def generate(n, path):
    """The same shape as directory-api's in-process benchmark."""
    locations = max(n * 3 // 10, 1)
    with open(path, "w") as out:
        def line(resource):
            out.write(json.dumps(resource, separators=(",", ":")) + "\n")
        line({"resourceType": "Organization", "id": "plan", "active": True, "name": "Bench Plan"})
        for k in range(20):
            line({"resourceType": "Organization", "id": f"net-{k}", "active": True, "name": f"Network {k}",
                  "type": [{"coding": [{"system": ORG_TYPE, "code": "ntwk"}]}],
                  "partOf": {"reference": "Organization/plan"}})
        for j in range(locations):
            line({"resourceType": "Location", "id": f"loc-{j}", "name": f"Site {j}",
                  "address": {"line": [f"{j} Main St"], "city": "Columbus", "state": "OH",
                              "postalCode": str(43000 + j % 500)},
                  "position": {"latitude": 38.5 + (j % 300) * 0.01,
                               "longitude": -84.8 + (j // 300 % 300) * 0.01}})
        for i in range(n):
            line({"resourceType": "Practitioner", "id": f"p-{i}", "active": True,
                  "name": [{"family": f"Family{i}", "given": ["Pat"]}]})
            line({"resourceType": "PractitionerRole", "id": f"r-{i}", "active": True,
                  "practitioner": {"reference": f"Practitioner/p-{i}"},
                  "location": [{"reference": f"Location/loc-{i % locations}"}],
                  "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy",
                                             "code": SPECIALTIES[i % len(SPECIALTIES)]}]}],
                  "extension": [{"url": NETWORK_EXTENSION,
                                 "valueReference": {"reference": f"Organization/net-{i % 20}"}}]})
    return 2 * n + locations + 21


def computed_passes(port, pid, label, per_thread, second_offset, request_body, preamble=""):
    """Runs wrk twice on searches that never repeat: a first pass, whose parts are read
    from the store as first needed, and a second pass of new URLs starting
    `second_offset` searches on. `request_body` is the body of wrk's `request`
    function, given `n`, the search's number (each thread has its own `per_thread`);
    `preamble` is Lua run once per thread before it."""
    for pass_label, offset in (("first pass", 0), ("second pass", second_offset)):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(f"""{preamble}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local n = nil
request = function()
  if n == nil then n = (id - 1) * {per_thread} + {offset} end
  n = n + 1
{request_body}
end
""")
        try:
            wrk(f"http://localhost:{port}",
                f"{label}, never the same twice (computed), {pass_label}", pid, ["-s", lua.name])
        finally:
            os.unlink(lua.name)


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    reuse = os.environ.get("DIRECTORY_BENCH_DATA")
    data = reuse or tempfile.mkdtemp(prefix="pa-dir-bench-")
    ndjson = os.path.join(data, "bench.snapshot.ndjson")
    count = None if reuse else generate(n, ndjson)
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--data", data, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://localhost:{port}/directory"
        wait_until_up(base + "/metadata", 60)
        # After the first start (which loads the demo directory): a snapshot replaces it.
        # `directory load` hands the file to the running server and waits for it.
        if count is not None:
            started = time.monotonic()
            subprocess.check_call([binary, "directory", "load", "--data", data, ndjson],
                                  stdout=subprocess.DEVNULL)
            took = time.monotonic() - started
            print(f"load: {count:,} resources ({os.path.getsize(ndjson) / 1e6:.1f} MB) in {took:.1f} s, "
                  f"{count / took:,.0f} resources/s; data directory {data}", flush=True)
        search = ("/PractitionerRole?specialty=207Q00000X&location.address-postalcode=43010"
                  "&_include=PractitionerRole:practitioner")
        body = urllib.request.urlopen(base + search).read()
        entries = body.count(b'"fullUrl"')
        print(f"response: {len(body)} bytes, {entries} entries", flush=True)
        wrk(base + search, "specialty+postalcode+_include, repeated (cached)", server.pid)
        # Each thread walks its own half of 10 specialties x 500 postal codes x 100 page
        # sizes (500,000 distinct searches), so no request repeats an earlier one. The
        # second pass starts 125,000 searches on: the same specialties and postal codes
        # with other page sizes, so no URL repeats the first pass.
        specialties = ",".join(f'"{s}"' for s in SPECIALTIES)
        computed_passes(port, server.pid, "specialty+postalcode+_include", 250000, 125000, """
local s = specialties[(n % 10) + 1]
local zip = 43000 + (math.floor(n / 10) % 500)
local count = 10 + (math.floor(n / 5000) % 100)
return wrk.format("GET", "/directory/PractitionerRole?specialty=" .. s ..
  "&location.address-postalcode=" .. zip .. "&_include=PractitionerRole:practitioner&_count=" .. count)
""", preamble=f"local specialties = {{{specialties}}}")
        wrk(base + "/Location?near=39.0|-84.75|5|km", "near 5 km, repeated (cached)", server.pid)
        # Each thread walks its own half of a 0.001-degree grid of centres over the
        # generated Locations (3 x 1 degrees: 3,000,000 distinct searches); the second
        # pass walks on from where the first could have reached.
        computed_passes(port, server.pid, "near 5 km", 1500000, 700000, """
local lat = 38.5 + (n % 3000) * 0.001
local lon = -84.8 + (math.floor(n / 3000) % 1000) * 0.001
return wrk.format("GET", string.format("/directory/Location?near=%.3f|%.3f|5|km", lat, lon))
""")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
