"""Throwaway TLS material for local servers: a self-signed CA and a server certificate signed by it.

Managed PostgreSQL publishes its CA; ``sslmode=verify-full`` with that CA is the
setting that also stops a man in the middle. This module lets the tests show that
on loopback, with a CA and a certificate for ``localhost`` / ``127.0.0.1``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from migration_engine.local.servers import RUN_AS

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1",)


@dataclass(frozen=True)
class CertificateAuthority:
    cert_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path


def tls_folder() -> Path:
    """A folder the server's OS user can read (pytest's tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="pgmig-tls-"))
    folder.chmod(0o755)
    return folder


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))


def make_ca(folder: Path, common_name: str = "throwaway migration test CA") -> CertificateAuthority:
    """A CA certificate written to ``folder/<name>.crt``; its key stays in memory."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file = folder / (common_name.replace(" ", "-") + ".crt")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert_file, key, cert)


def make_server_certificate(ca: CertificateAuthority, folder: Path, *, names=LOOPBACK_NAMES, ips=LOOPBACK_IPS,
                            stem: str = "server") -> ServerCertificate:
    """A server certificate for ``names``/``ips`` signed by ``ca``; the key is 0600 and, when we
    are root, owned by the server's OS user (PostgreSQL and pgbouncer refuse group/world-readable keys)."""
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(names[0] if names else ips[0]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    os.chmod(key_file, 0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    if os.geteuid() == 0:
        for path in (cert_file, key_file):
            shutil.chown(path, RUN_AS)
    return ServerCertificate(cert_file, key_file)
