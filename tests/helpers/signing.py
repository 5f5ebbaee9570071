"""Key pairs and trust policies for the signing tests (torch-free: the registry tests use them too)."""
from pathlib import Path
from typing import Dict, List, Tuple


def write_key_pair(prefix: Path) -> Tuple[Path, Path]:
    """Write a fresh P-256 key pair as ``<prefix>.pem`` (private) and ``<prefix>.pub`` (public); returns both."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = prefix.with_suffix(".pem"), prefix.with_suffix(".pub")
    private.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def write_ca_and_signer(folder: Path) -> Tuple[Path, Path, Path]:
    """A test CA and a code-signing certificate it issued: ``(ca.pem, signer.crt, signer.key)`` under ``folder``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                             encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test CA {folder.name}")])

    def builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)))

    ca = (builder(ca_name, ca_key.public_key()).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
          .add_extension(usage(True), True).sign(ca_key, hashes.SHA256()))
    signer = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")]), key.public_key())
              .add_extension(usage(False), True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
              .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "signer.crt", folder / "signer.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def write_policy(path: Path, rules: Dict[str, List[Path]]) -> Path:
    """Write a trust policy file: one ``PATTERN KEYFILE...`` line per rule; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# pattern  key files\n" + "".join(f"{p} {' '.join(str(k) for k in keys)}\n"
                                                        for p, keys in rules.items()))
    return path
