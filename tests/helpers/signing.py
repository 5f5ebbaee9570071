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


def write_policy(path: Path, rules: Dict[str, List[Path]]) -> Path:
    """Write a trust policy file: one ``PATTERN KEYFILE...`` line per rule; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# pattern  key files\n" + "".join(f"{p} {' '.join(str(k) for k in keys)}\n"
                                                        for p, keys in rules.items()))
    return path
