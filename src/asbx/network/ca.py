"""A project's certificate authority for the egress proxy, and the leaf certificates it issues.

The proxy terminates TLS only for hosts a secret is granted to, with a certificate for that host
signed by the project's CA. The CA's key stays on the host (0600, in a 0700 directory under
ASBX_HOME); sandboxes get only its certificate, to trust."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from asbx.errors import AsbxError

CA_DAYS = 3650
LEAF_DAYS = 7  # leaves live in the proxy's memory only; a restart issues new ones
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"


class CertificateError(AsbxError):
    """The project's CA is missing, unsafe or unreadable."""


@dataclass(frozen=True)
class ProjectCA:
    """Where a project's CA lives: the certificate (public) and its private key (host only)."""

    cert_path: Path
    key_path: Path

    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()


def ensure_project_ca(directory: Path, project: str) -> ProjectCA:
    """The CA in `directory`, made on first use; refuses a key others can read or a symlink."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca = ProjectCA(directory / CA_CERT, directory / CA_KEY)
    if ca.key_path.exists() or ca.key_path.is_symlink():
        _check_private(ca.key_path)
        if not ca.cert_path.is_file():
            raise CertificateError(f"{ca.cert_path} is missing beside its key",
                                   hint=f"remove {directory} to make a new CA (sandboxes with "
                                        "secrets are then given the new certificate on apply)")
        return ca
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "asbx"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"asbx egress CA ({project})"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(ca.key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    _write_atomically(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca


def _check_private(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise CertificateError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise CertificateError(f"{path} can be read by others (mode {info.st_mode & 0o777:o})",
                               hint=f"chmod 600 {path}, or remove its directory to make a new CA")


def _write_private(path: Path, data: bytes) -> None:
    _write_atomically(path, data, 0o600)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temp, path)


class LeafIssuer:
    """Server-side TLS contexts for intercepted hosts, each with a leaf certificate issued by the
    project's CA on first use and kept in memory (its key never touches a lasting file)."""

    def __init__(self, ca: ProjectCA) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        _check_private(ca.key_path)
        self._ca_cert = x509.load_pem_x509_certificate(ca.cert_path.read_bytes())
        key = serialization.load_pem_private_key(ca.key_path.read_bytes(), password=None)
        self._ca_key = key
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def context(self, host: str) -> ssl.SSLContext:
        """A server context presenting a certificate for `host` (a name or an IP literal). Names
        differ only in case are one host: one leaf (else a client could make the proxy mint and
        keep a leaf for each of a long name's thousands of spellings)."""
        host = host.lower()
        with self._lock:
            found = self._contexts.get(host)
            if found is None:
                found = self._contexts[host] = self._make_context(host)
            return found

    def _make_context(self, host: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
                .issuer_name(self._ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(self._ca_key, hashes.SHA256()))  # type: ignore[arg-type]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        # ssl loads certificates only from files: a private directory, removed at once
        with tempfile.TemporaryDirectory(prefix="asbx-leaf-") as scratch:
            chain, key_file = Path(scratch) / "chain.pem", Path(scratch) / "key.pem"
            _write_private(chain, cert.public_bytes(serialization.Encoding.PEM)
                           + self._ca_cert.public_bytes(serialization.Encoding.PEM))
            _write_private(key_file, key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            context.load_cert_chain(chain, key_file)
        return context
