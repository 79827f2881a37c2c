"""API Gateway, locally: Chalice's LocalDevServer behind TLS, with Status bodies for unknown paths."""
import datetime
import ipaddress
import json
import socket
import ssl
from pathlib import Path

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer


def ensure_certificate(directory):
    """A self-signed certificate for localhost/127.0.0.1, made once (why the seed's curl says --insecure)."""
    directory = Path(directory)
    cert, key = directory / "tls.crt", directory / "tls.key"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


class _Handler(ChaliceRequestHandler):
    """API Gateway's 'Missing Authentication Token' for unknown paths becomes a 404 Status (as in infra/)."""

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass

    def setup(self):
        """No Nagle delay: without TCP_NODELAY every response waited ~40 ms for a delayed ACK."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def _send_error_response(self, error):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "the server could not find the requested resource", "reason": "NotFound",
                           "code": 404, "details": {}}).encode()
        self._send_http_response(404, {"Content-Type": "application/json"}, body)


def serve(app, cert, key, port, host="127.0.0.1"):
    """A started (not yet serving) HTTPS server for the Chalice app; call serve_forever() in a thread."""
    server = LocalDevServer(app, Config(), host, port, handler_cls=_Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server
