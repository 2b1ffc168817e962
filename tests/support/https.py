"""A loopback HTTPS server whose certificate a private CA signed (for 127.0.0.1), for the tests
of how sources verify TLS: ``ca_file`` pointing at that CA verifies it; the system's CAs do not."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshobs.demo.httpserver import LoopbackHTTPServer, Responder


def tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, written as PEM in ``tmp``."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshobs test CA")])
    start, end = dt.datetime.now(dt.UTC) - dt.timedelta(days=1), dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(2).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=True).sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextmanager
def https_server(respond: Responder, cert: Path, key: Path) -> Iterator[str]:
    """Serve ``respond`` over TLS with ``cert`` and ``key``; yields the https:// URL (stopped on exit)."""
    server = LoopbackHTTPServer(respond)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The handshake happens on the connection's own thread (its first read), not in accept():
    # there it would run on the serving thread, and a client that connects and then sends
    # nothing, nor closes, would hold that thread, and so the shutdown on exit, forever.
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True,
                                               do_handshake_on_connect=False)
    printed = server._httpd.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        # A client refusing the certificate (the tests' point) ends its handshake with an alert,
        # raised on the connection's thread: expected, not printed as a server error.
        if not isinstance(sys.exc_info()[1], ssl.SSLError):
            printed(request, client_address)

    server._httpd.handle_error = handle_error  # type: ignore[method-assign]
    with server:
        yield server.url.replace("http://", "https://")
