# remotezip, the peer of the gateway's single-file route (benches/load/upstream/src/peers.rs).
# argv: MODE ENTRY SIZE SECS URL...
#   read: one RemoteZip of URL, ENTRY read in 1 MiB pieces;
#   cold: a fresh RemoteZip per URL (tail, central directory, entry), ENTRY read whole;
#         here the arguments after SECS are pairs "ENTRY_SIZE URL" (each archive's entry differs);
#   warm: one RemoteZip of URL kept open, ENTRY read again and again for SECS seconds.
# Every read is checked: its length against SIZE, its bytes by zipfile's CRC-32 check at
# the end of the entry (BadZipFile otherwise). Output: "CPU_SECONDS SPAN_SECONDS", then one
# latency in microseconds per line.
import sys
import time

import remotezip
import requests

mode, entry, size, secs, urls = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]


def read_all(z, size):
    n = 0
    with z.open(entry) as f:
        while True:
            piece = f.read(1 << 20)
            if not piece:
                break
            n += len(piece)
    assert n == size, f"{entry}: {n} bytes, expected {size}"


latencies = []
cpu0, t0 = time.process_time(), time.perf_counter()
if mode == "read":
    with remotezip.RemoteZip(urls[0]) as z:
        read_all(z, size)
elif mode == "cold":
    session = requests.Session()
    for entry_size, url in zip(urls[0::2], urls[1::2]):
        t = time.perf_counter()
        with remotezip.RemoteZip(url, session=session) as z:
            read_all(z, int(entry_size))
        latencies.append(time.perf_counter() - t)
elif mode == "warm":
    with remotezip.RemoteZip(urls[0], session=requests.Session()) as z:
        read_all(z, size)  # unmeasured, as the gateway's first warm request
        cpu0, t0 = time.process_time(), time.perf_counter()
        deadline = t0 + secs
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            read_all(z, size)
            latencies.append(time.perf_counter() - t)
else:
    sys.exit(f"unknown mode {mode}")
print(time.process_time() - cpu0, time.perf_counter() - t0)
for latency in latencies:
    print(int(latency * 1e6))
