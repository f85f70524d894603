"""HTTPS sessions load the CA bundle once and still verify every connection."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from reprolock.net.config import NetConfig
from reprolock.net.session import new_session

x509 = pytest.importorskip("cryptography.x509")
hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")


def _name(text: str) -> object:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, text)])


def _ca(folder: Path, label: str) -> tuple[object, object, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(_name(label))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{label}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _server_cert(folder: Path, ca_key: object, ca_cert: object, host: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: object = (
        x509.IPAddress(ipaddress.ip_address(host)) if host[0].isdigit() else x509.DNSName(host)
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"server-{host}.pem", folder / f"server-{host}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")  # every request needs a new connection
        self.end_headers()
        self.wfile.write(b"ok")


def _serve(cert: Path, key: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[str, Path, Path, Path]]:
    """A loopback HTTPS server; its CA's bundle, a stranger CA's, and a wrong-host server's
    certificate."""
    ca_key, ca_cert, bundle = _ca(tmp_path, "test-ca")
    _, _, stranger = _ca(tmp_path, "stranger-ca")
    cert, key = _server_cert(tmp_path, ca_key, ca_cert, "127.0.0.1")
    wrong_host, _ = _server_cert(tmp_path, ca_key, ca_cert, "other.example")
    for url in _serve(cert, key):
        yield url, bundle, stranger, wrong_host


def test_the_ca_bundle_is_loaded_once_for_all_connections(
    tls: tuple[str, Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, bundle, _, _ = tls
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    session = new_session(NetConfig(ca_bundle=str(bundle)))
    try:
        for _ in range(4):
            assert session.get(url).content == b"ok"
    finally:
        session.close()
    assert len(loads) == 1


def test_connections_are_still_verified(tls: tuple[str, Path, Path, Path]) -> None:
    url, _, stranger, _ = tls
    session = new_session(NetConfig(ca_bundle=str(stranger), retries=0))
    try:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url)
    finally:
        session.close()


def test_host_names_are_still_checked(tls: tuple[str, Path, Path, Path], tmp_path: Path) -> None:
    _, bundle, _, wrong_host = tls
    key = wrong_host.with_suffix(".key")
    for url in _serve(wrong_host, key):
        session = new_session(NetConfig(ca_bundle=str(bundle), retries=0))
        try:
            with pytest.raises(requests.exceptions.SSLError):
                session.get(url)
        finally:
            session.close()
