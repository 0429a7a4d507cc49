"""Throw-away TLS for the emulator: msal accepts only https authorities, so the emulator serves HTTPS.

`server_context()` makes a fresh CA and a certificate for 127.0.0.1 (and localhost) signed by it, with
`cryptography`, and returns the server's SSLContext plus the path of the CA PEM. Give that path to the
gateway as `microsoft.ca_bundle`: the connector then trusts it for both msal (requests) and Graph (aiohttp).
Keys are EC P-256, so making them costs milliseconds, and nothing outlives the process but the PEM files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contacts Gateway emulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_certificates(host: str = "127.0.0.1") -> tuple[bytes, bytes, bytes]:
    """(CA cert PEM, server cert chain PEM, server key PEM) for a server at `host` (an IP or a name)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Contacts Gateway emulator CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names.append(x509.DNSName(host))
    else:
        names.append(x509.IPAddress(address))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return ca_pem, cert.public_bytes(serialization.Encoding.PEM) + ca_pem, _pem_key(key)


def server_context(ca_file: str | Path | None = None, host: str = "127.0.0.1") -> tuple[ssl.SSLContext, Path]:
    """A server SSLContext with a fresh certificate for `host`, and the path its CA PEM was written to.

    `ca_file` is where to write the CA (default: a new file in the temp directory); the server key and
    certificate go to a private temp directory, since `load_cert_chain` reads files only.
    """
    ca_pem, chain_pem, key_pem = make_certificates(host)
    ca_path = Path(ca_file) if ca_file is not None else Path(tempfile.mkdtemp(prefix="msgraph-emu-")) / "ca.pem"
    ca_path.write_bytes(ca_pem)
    with tempfile.TemporaryDirectory(prefix="msgraph-emu-key-") as private:
        chain, key = Path(private) / "chain.pem", Path(private) / "key.pem"
        chain.write_bytes(chain_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key)
    return context, ca_path


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """A client SSLContext that trusts only the CA in `ca_file` (what tests and the control client use)."""
    return ssl.create_default_context(cafile=str(ca_file))
