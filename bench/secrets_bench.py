"""HTTPS requests/s through one real egress proxy process: a plain CONNECT tunnel (TLS end to
end) vs a tunnel the proxy intercepts to put a secret in (TLS terminated, verified upstream,
header set). Loopback only: HTTPS upstreams on 127.0.0.1 (granted) and 127.0.0.2 (not), from a
CA made for the run; each request is a new connection (an intercepted tunnel carries one).

    python bench/secrets_bench.py --requests 500 --concurrency 8 --rounds 3
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import multiprocessing
import os
import socket
import ssl
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from asbx.network.ca import ensure_project_ca
from asbx.network.manager import ensure_proxy, stop_proxy
from asbx.network.secrets import SecretGrant
from asbx.runtime.command import SubprocessRunner

IPS = ("127.0.0.1", "127.0.0.2")


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for both loopback addresses signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip)) for ip in IPS]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"ok" if self.headers.get("Authorization") else b"no-secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(ip: str, port: int, cert: Path, key: Path) -> None:
    server = ThreadingHTTPServer((ip, port), _Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one(proxy_port: int, target: str, trust: ssl.SSLContext) -> bytes:
    ip = target.partition(":")[0]
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=30) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += raw.recv(1)
        with trust.wrap_socket(raw, server_hostname=ip) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
                        .encode())
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return answer.rpartition(b"\r\n\r\n")[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca_path, cert, key = _certificates(directory)
        port = _free_port()
        servers = [multiprocessing.Process(target=_serve, args=(ip, port, cert, key),
                                           daemon=True) for ip in IPS]
        for server in servers:
            server.start()
        time.sleep(0.5)
        os.environ["SSL_CERT_FILE"] = str(ca_path)  # the proxy's trust store for upstreams
        project_ca = ensure_project_ca(directory / "project-ca", "bench")
        grant = SecretGrant("token", (IPS[0],), "bench-secret-value",
                            header="Authorization: Bearer {}")
        run_dir = directory / "run"
        handle = ensure_proxy(run_dir, "127.0.0.1", [f"{ip}:{port}" for ip in IPS],
                              runner=SubprocessRunner(), secrets=[grant], ca=project_ca)
        trust = ssl.create_default_context(cafile=str(ca_path))
        trust.load_verify_locations(cafile=str(project_ca.cert_path))
        try:
            for name, target, expect in (("plain CONNECT tunnel", f"{IPS[1]}:{port}",
                                          b"no-secret"),
                                         ("intercepted (secret set)", f"{IPS[0]}:{port}",
                                          b"ok")):
                rates = []
                for _ in range(args.rounds):
                    started = time.monotonic()
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        bodies = list(pool.map(lambda _i, t=target: _one(handle.port, t, trust),
                                               range(args.requests)))
                    elapsed = time.monotonic() - started
                    assert all(b == expect for b in bodies), set(bodies)
                    rates.append(args.requests / elapsed)
                print(f"{name:26} " + "  ".join(f"{r:7.1f}/s" for r in rates)
                      + f"   (best {max(rates):.1f}/s)")
        finally:
            stop_proxy(run_dir)
            for server in servers:
                server.terminate()


if __name__ == "__main__":
    main()
