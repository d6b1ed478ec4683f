"""The lab broker's TLS material: a lab CA and a server certificate, created once and kept."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtnlab.inventory.model import Lab

from .secret_files import Pending, later, write_file, write_secret

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
SERVER_KEY = "server.key"
SERVER_CERT = "server.crt"
BROKER_NODE = "broker"  # the containerlab node name of the broker
CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=825)
CLOCK_SKEW = dt.timedelta(hours=1)  # containers and hosts rarely agree to the second
RENEW_BEFORE = dt.timedelta(days=1)  # a cert that expires tomorrow counts as expired today


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert: str  # PEM, public
    server_cert: str  # PEM, public
    server_key_path: Path  # the key stays in the secrets folder


def server_names(lab: Lab) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses the broker's certificate must name.

    `clab-<lab>-broker` is the container name containerlab gives the node, resolvable on its
    management network, so clients there can verify the broker by either name.
    """
    return ["localhost", BROKER_NODE, f"clab-{lab.name}-broker"], ["127.0.0.1", "::1"]


def ensure_tls(lab: Lab, folder: Path, pending: Pending | None = None) -> TlsMaterial:
    """Load the lab's CA and server certificate, creating or renewing only what is unusable.

    The CA is made once. The server certificate is reissued only when it is missing, expired
    (or expires within a day), was not issued by this CA, does not match the server key, or
    does not name the broker's hosts; otherwise the files are left untouched.

    Args:
        lab: the lab; its name goes into the certificates.
        folder: the lab's secrets folder; keys are written with mode 0600.
        pending: when given, file writes are queued here for the caller to run (see
            secrets.ensure_secrets).

    Returns:
        The public certificates as PEM text and the path of the server key.
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = _load_or_create_key(folder / CA_KEY, pending)
    ca_cert = _load_cert(folder / CA_CERT)
    if ca_cert is None or not _usable(ca_cert, ca_key, now):
        ca_cert = _issue_ca(lab, ca_key, now)
        later(pending, write_file, folder / CA_CERT, _pem(ca_cert), 0o644)
    server_key = _load_or_create_key(folder / SERVER_KEY, pending)
    server_cert = _load_cert(folder / SERVER_CERT)
    if server_cert is None or not _server_usable(lab, server_cert, server_key, ca_cert, now):
        server_cert = _issue_server(lab, server_key, ca_cert, ca_key, now)
        later(pending, write_file, folder / SERVER_CERT, _pem(server_cert), 0o644)
    return TlsMaterial(
        ca_cert=_pem(ca_cert), server_cert=_pem(server_cert), server_key_path=folder / SERVER_KEY
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _load_or_create_key(path: Path, pending: Pending | None) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        later(pending, write_secret, path, key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode())
        return key
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key, found {type(key).__name__}")
    return key


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None  # missing or unreadable: reissue


def _usable(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> bool:
    return (cert.not_valid_after_utc - RENEW_BEFORE > now
            and cert.public_key() == key.public_key())


def _server_usable(
    lab: Lab,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime,
) -> bool:
    if not _usable(cert, key, now):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    dns, ips = server_names(lab)
    return (set(dns) <= set(sans.get_values_for_type(x509.DNSName))
            and {ipaddress.ip_address(ip) for ip in ips}
            <= set(sans.get_values_for_type(x509.IPAddress)))


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dtnlab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _issue_ca(lab: Lab, key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name(f"dtnlab {lab.name} CA")
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_server(
    lab: Lab,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
) -> x509.Certificate:
    dns, ips = server_names(lab)
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name(BROKER_NODE))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        # never outlive the CA, or clients would reject the chain before the server cert expires
        .not_valid_after(min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in dns]
            + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
