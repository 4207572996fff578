"""The local servers' TLS: a certificate authority of their own, and one server certificate.

Made at first start and kept under the state directory, so that a client can verify the
servers fully (`verify-full`) against `ca.pem`, as it would a deployment's own CA.
"""

import datetime
import ipaddress
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class ServerTls:
    """Where the files are: the authority's certificate, the server's certificate and key,
    and both of those in one file (the form Kafka's PEM key store reads)."""

    ca: Path
    certificate: Path
    key: Path
    key_and_certificate: Path


def local_tls(folder: Path, *, host: str) -> ServerTls:
    """The authority and the server certificate in `folder`, made on first call; the
    certificate names `host` and `localhost`."""
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Made aside and renamed into place whole: processes starting at once (test
        # workers) keep the first complete set, never a mix of two.
        draft = Path(tempfile.mkdtemp(prefix=".tls.", dir=folder.parent))
        _make(_files(draft), host=host)
        try:
            draft.rename(folder)
        except OSError:
            shutil.rmtree(draft)
    return _files(folder)


def _files(folder: Path) -> ServerTls:
    return ServerTls(
        ca=folder / "ca.pem",
        certificate=folder / "server.pem",
        key=folder / "server-key.pem",
        key_and_certificate=folder / "server-key-and-certificate.pem",
    )


def _make(tls: ServerTls, *, host: str) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roadwatch local CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certificate = server_certificate.public_bytes(serialization.Encoding.PEM)
    # PKCS#8, unencrypted: the one form both PostgreSQL and Kafka's PEM key store read.
    key = server_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(tls.key, key, private=True)
    _write(tls.key_and_certificate, key + certificate, private=True)
    _write(tls.certificate, certificate)
    # The authority's key is not kept: nothing more is ever signed with it.
    _write(tls.ca, ca_certificate.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, content: bytes, *, private: bool = False) -> None:
    path.touch(mode=0o600 if private else 0o644)
    path.write_bytes(content)
