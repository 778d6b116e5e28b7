"""Load on one egress proxy: N concurrent requests from one client, through the real proxy
process, to an HTTP server on 127.0.0.1; counts answers, times them, reads the proxy's peak RSS.

    python bench/proxy_bench.py --requests 1000 --rounds 3
    python bench/proxy_bench.py --requests 1000 --max-connections 64 --max-queued 1
    python bench/proxy_bench.py --requests 1000 --proxy-src /path/to/older/src  # a baseline

Only loopback is used; every request has a deadline and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def _serve(port_out: multiprocessing.connection.Connection, body_bytes: int) -> None:
    """The upstream: an asyncio HTTP/1.0 server answering every request with `body_bytes`."""
    body = b"x" * body_bytes
    head = (f"HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            writer.write(head + body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class Round:
    seconds: float
    statuses: Counter[str]
    peak_rss_kib: int
    threads_peak: int


async def _one(proxy_port: int, upstream_port: int, timeout: float) -> str:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", proxy_port), timeout)
        writer.write(f"GET http://127.0.0.1:{upstream_port}/bench HTTP/1.0\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
        return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "empty"
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__


async def _burst(proxy_port: int, upstream_port: int, requests: int,
                 timeout: float) -> list[str]:
    return list(await asyncio.gather(*(_one(proxy_port, upstream_port, timeout)
                                       for _ in range(requests))))


def _proc_status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _watch(pid: int, stop: list[bool], peak: list[int]) -> None:
    while not stop:
        try:
            peak[0] = max(peak[0], int(_proc_status(pid)["Threads"]))
        except (OSError, KeyError, ValueError):
            return
        time.sleep(0.01)


def run_round(args: argparse.Namespace, upstream_port: int, scratch: Path) -> Round:
    """Start a fresh proxy process, send one burst through it, stop it."""
    import threading

    state = scratch / "proxy.json"
    state.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "asbx.network.proxy", "--listen", "127.0.0.1:0",
            "--allow", f"127.0.0.1:{upstream_port}", "--log", str(scratch / "proxy.log"),
            "--state", str(state)]
    env = dict(os.environ)
    if args.proxy_src:  # an older asbx, which may not know the limit flags
        env["PYTHONPATH"] = args.proxy_src
    else:
        argv += ["--max-connections", str(args.max_connections),
                 "--max-queued", str(args.max_queued)]
    proxy = subprocess.Popen(argv, env=env)
    try:
        deadline = time.monotonic() + 10
        while not state.exists():
            if time.monotonic() > deadline or proxy.poll() is not None:
                raise SystemExit("the proxy did not start")
            time.sleep(0.02)
        proxy_port = int(json.loads(state.read_text())["port"])
        stop: list[bool] = []
        peak = [0]
        watcher = threading.Thread(target=_watch, args=(proxy.pid, stop, peak), daemon=True)
        watcher.start()
        started = time.monotonic()
        statuses = asyncio.run(_burst(proxy_port, upstream_port, args.requests, args.timeout))
        seconds = time.monotonic() - started
        stop.append(True)
        watcher.join(1)
        rss = int(_proc_status(proxy.pid)["VmHWM"].split()[0])
        return Round(seconds, Counter(statuses), rss, peak[0])
    finally:
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="concurrent requests")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--body-bytes", type=int, default=16384)
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--max-queued", type=int, default=2048)
    parser.add_argument("--proxy-src", help="run the proxy of the asbx source tree here instead")
    parser.add_argument("--json", action="store_true", help="print one JSON line per round")
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the client holds every socket
    if soft < min(hard, args.requests + 256):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.requests + 256), hard))
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_serve, args=(sender, args.body_bytes), daemon=True)
    server.start()
    upstream_port = int(receiver.recv())
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="asbx-proxy-bench-") as scratch:
            for index in range(args.rounds):
                result = run_round(args, upstream_port, Path(scratch))
                ok = result.statuses.get("200", 0)
                failed |= ok != args.requests
                row = {"round": index + 1, "requests": args.requests, "ok": ok,
                       "others": dict(result.statuses - Counter({"200": ok})),
                       "seconds": round(result.seconds, 3),
                       "requests_per_s": round(args.requests / result.seconds, 1),
                       "peak_rss_mib": round(result.peak_rss_kib / 1024, 1),
                       "peak_threads": result.threads_peak}
                print(json.dumps(row) if args.json else
                      f"round {row['round']}: {ok}/{args.requests} ok {row['others'] or ''} "
                      f"in {row['seconds']}s ({row['requests_per_s']} req/s), proxy peak RSS "
                      f"{row['peak_rss_mib']} MiB, {row['peak_threads']} threads", flush=True)
    finally:
        server.terminate()
        server.join(5)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
