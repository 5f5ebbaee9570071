"""Signed repos: the OpenSSF model-signing format, a trust policy, and checks against file hashes.

A repo is signed by a ``model.sig`` file (the format's default name) at its root: a Sigstore bundle
whose DSSE payload lists every other file of the repo with its sha256 (model-signing's ``files``
serialization), signed with an elliptic-curve private key or a key whose certificate chains to a
trusted certificate. Files model-signing leaves out by default (``.gitattributes``, ``.gitignore``,
``.git/``, ``.github/``) and ``model.sig`` itself are not covered; every other file is.

:class:`TrustPolicy` says whose keys are trusted for which repos (``SE_ZOO_TRUSTED_KEYS``, see
:meth:`TrustPolicy.load`). :func:`verify_signature` checks a signature against a policy and
returns the signed digests; :func:`check_files` compares them with the files a repo holds (or will
hold after a commit), by path and sha256, so a registry can check a commit from its stored hashes
without rebuilding a directory, and a client a downloaded snapshot.

It lives in the registry package (torch-free, shipped by both distributions) because the registry
enforces signatures too; the model side (:mod:`se_zoo.hub`) imports this one module of it.
``model-signing`` is imported only when a signature is made or checked, and is the ``signing`` extra
(``pip install 'se-zoo[signing]'`` or ``'se-zoo-registry[signing]'``).
"""
import fnmatch
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "SIGNATURE_NAME", "TRUSTED_KEYS_ENV", "SignatureError", "SignedManifest", "TrustPolicy", "TrustedKey",
    "check_files", "directory_digests", "is_covered", "sign_directory", "signer_key_id", "verify_directory",
    "verify_signature",
]

SIGNATURE_NAME = "model.sig"  # model-signing's default signature file name
TRUSTED_KEYS_ENV = "SE_ZOO_TRUSTED_KEYS"
# model-signing's default ignored paths (hashing.Config(ignore_git_paths=True)), and the signature itself
_UNCOVERED_FILES = frozenset({SIGNATURE_NAME, ".gitattributes", ".gitignore"})
_UNCOVERED_DIRS = (".git/", ".github/")
_CERT_SUFFIXES = (".crt", ".cert", ".pem")
_KEY_SUFFIXES = (".pub",)


class SignatureError(ValueError):
    """A repo's signature is missing, untrusted, or does not match its files; nothing was loaded or stored."""


def _model_signing():
    """The ``model_signing`` package, or an ImportError naming the extra that installs it."""
    try:
        import model_signing  # noqa: F401
        from model_signing import hashing, signing
        from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore_pb
    except ImportError as exc:
        raise ModuleNotFoundError("Signing and verifying repos needs the model-signing package: pip install "
                                  "'se-zoo[signing]' (or 'se-zoo-registry[signing]')", name="model_signing") from exc
    return hashing, signing, sign_ec_key, sign_certificate, sign_sigstore_pb


def key_id_of_public_pem(pem: bytes) -> str:
    """A key's id: the first 16 hex digits of model-signing's key hint (sha256 of the PEM public key).

    Args:
        pem: A PEM ``PUBLIC KEY`` block, as ``SubjectPublicKeyInfo``.

    Returns:
        16 lowercase hex digits.
    """
    return hashlib.sha256(pem).hexdigest()[:16]


def _public_pem(key_or_cert: object) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = key_or_cert.public_key() if hasattr(key_or_cert, "public_key") else key_or_cert
    return public.public_bytes(encoding=serialization.Encoding.PEM,
                               format=serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class TrustedKey:
    """One trusted public key or certificate.

    Attributes:
        path: The PEM file.
        kind: ``"key"`` (an elliptic-curve public key) or ``"certificate"`` (a CA or signing
            certificate: signatures whose certificate chains to it are trusted).
        key_id: The id shown for it (see :func:`key_id_of_public_pem`).
    """

    path: Path
    kind: str
    key_id: str

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "TrustedKey":
        """Read a PEM public key or certificate.

        Raises:
            SignatureError: if the file is neither, naming it.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SignatureError(f"trusted key file {path} cannot be read: {exc.strerror}") from None
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            if b"BEGIN CERTIFICATE" in data:
                return cls(path, "certificate", key_id_of_public_pem(_public_pem(x509.load_pem_x509_certificate(data))))
            return cls(path, "key", key_id_of_public_pem(_public_pem(serialization.load_pem_public_key(data))))
        except ValueError as exc:
            raise SignatureError(f"trusted key file {path}: expected a PEM public key or certificate ({exc})") from None


@dataclass(frozen=True)
class TrustPolicy:
    """Which keys are trusted for which repos: ``(pattern, keys)`` rules, first match wins.

    A pattern is an ``fnmatch`` pattern over ``namespace/name`` (``acme/*``, ``acme/se-*``, ``*``);
    a bare namespace ``acme`` means ``acme/*``. Repos no pattern matches are not checked.
    """

    rules: Tuple[Tuple[str, Tuple[TrustedKey, ...]], ...]
    source: str = ""

    @classmethod
    def load(cls, path: Union[str, Path]) -> "TrustPolicy":
        """Read a policy from a file or a folder.

        A **file** holds one rule a line: ``PATTERN KEYFILE [KEYFILE ...]``, paths relative to the
        file's folder; ``#`` starts a comment. A **folder** holds one sub-folder per pattern (its name
        is the pattern, e.g. ``acme`` or ``acme-*``) with the trusted ``*.pub`` public keys and
        ``*.pem``/``*.crt`` certificates in it.

        Args:
            path: The file or folder.

        Returns:
            The policy.

        Raises:
            SignatureError: if it does not exist, a line is malformed, a rule has no key, or a key
                file is unreadable; the message names the file and line.
            ModuleNotFoundError: without model-signing (the ``signing`` extra).
        """
        _model_signing()  # the helpful error naming the extra, before any key is parsed
        path = Path(path)
        rules: List[Tuple[str, Tuple[TrustedKey, ...]]] = []
        if path.is_dir():
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                files = sorted(p for p in sub.iterdir() if p.suffix in _KEY_SUFFIXES + _CERT_SUFFIXES)
                if not files:
                    raise SignatureError(f"trusted keys folder {sub} holds no *.pub key or *.pem/*.crt certificate")
                rules.append((_pattern(sub.name), tuple(TrustedKey.from_file(f) for f in files)))
        elif path.is_file():
            for number, raw in enumerate(path.read_text().splitlines(), 1):
                line = raw.split("#", 1)[0].split()
                if not line:
                    continue
                if len(line) < 2:
                    raise SignatureError(f"{path}:{number}: expected 'PATTERN KEYFILE [KEYFILE ...]', got {raw!r}")
                keys = tuple(TrustedKey.from_file(path.parent / f) for f in line[1:])
                rules.append((_pattern(line[0]), keys))
        else:
            raise SignatureError(f"{TRUSTED_KEYS_ENV} / --trusted-keys must name a policy file or folder, "
                                 f"got {str(path)!r}, which does not exist")
        return cls(tuple(rules), str(path))

    @classmethod
    def from_env(cls) -> Optional["TrustPolicy"]:
        """The policy ``SE_ZOO_TRUSTED_KEYS`` names, or None when it is unset or empty."""
        value = os.environ.get(TRUSTED_KEYS_ENV, "").strip()
        return cls.load(value) if value else None

    def keys_for(self, repo_id: str) -> Optional[Tuple[str, Tuple[TrustedKey, ...]]]:
        """The first rule matching ``repo_id``: ``(pattern, keys)``, or None when none does."""
        for pattern, keys in self.rules:
            if fnmatch.fnmatchcase(repo_id, pattern):
                return pattern, keys
        return None


def _pattern(text: str) -> str:
    return text if "/" in text else f"{text}/*"


@dataclass(frozen=True)
class SignedManifest:
    """A verified signature's content.

    Attributes:
        key_id: The id of the trusted key (or certificate) it verified against.
        digests: Each signed path's sha256.
        ignored: Paths the signer left out (besides the default ones), as the signature records them.
    """

    key_id: str
    digests: Dict[str, str]
    ignored: Tuple[str, ...] = ()


def is_covered(path: str, ignored: Iterable[str] = ()) -> bool:
    """Whether a repo path is covered by a signature (not ``model.sig``, git metadata or a signed ignore)."""
    if path in _UNCOVERED_FILES or path.startswith(_UNCOVERED_DIRS):
        return False
    return not any(path == p or path.startswith(p.rstrip("/") + "/") for p in ignored)


def signer_key_id(signature: bytes) -> Optional[str]:
    """The id of the key a signature claims to be made with (unverified), or None if it names none.

    Args:
        signature: The ``model.sig`` bytes.
    """
    try:
        material = json.loads(signature)["verificationMaterial"]
        if material.get("publicKey", {}).get("hint"):
            return material["publicKey"]["hint"][:16]
        raw = (material.get("x509CertificateChain", {}).get("certificates") or [{}])[0].get("rawBytes")
        if raw:
            import base64

            from cryptography import x509

            return key_id_of_public_pem(_public_pem(x509.load_der_x509_certificate(base64.b64decode(raw))))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def verify_signature(signature: bytes, repo_id: str, keys: Sequence[TrustedKey]) -> SignedManifest:
    """Check that ``signature`` was made by one of ``keys`` and return what it signs.

    Args:
        signature: The ``model.sig`` bytes.
        repo_id: The repo, for the messages.
        keys: The keys trusted for it.

    Returns:
        The signed manifest and the key it verified against.

    Raises:
        SignatureError: if no key verifies it (naming the key it claims and the trusted ones), it
            is not a model-signing bundle, or it signs with something else than per-file sha256.
        ModuleNotFoundError: without model-signing (the ``signing`` extra).
    """
    _, _, sign_ec_key, sign_certificate, sign_sigstore_pb = _model_signing()
    with tempfile.TemporaryDirectory() as tmp:
        sig_path = Path(tmp) / SIGNATURE_NAME
        sig_path.write_bytes(signature)
        try:
            bundle = sign_sigstore_pb.Signature.read(sig_path)
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"{repo_id}: {SIGNATURE_NAME} is not a model-signing signature ({exc})") from None
    claimed = signer_key_id(signature) or "an unnamed key"
    manifest = None
    for key in keys:
        verifier = (sign_ec_key.Verifier(key.path) if key.kind == "key"
                    else sign_certificate.Verifier([key.path]))
        try:
            manifest = verifier.verify(bundle)
        except Exception:  # noqa: BLE001 - any failure means: not this key
            continue
        break
    else:
        trusted = ", ".join(f"{k.key_id} ({k.path.name})" for k in keys)
        raise SignatureError(f"{repo_id}: {SIGNATURE_NAME} is signed by key {claimed}, which is not trusted for "
                             f"this repo (trusted: {trusted})")
    kind = manifest.serialization_type
    if kind.get("method") != "files" or kind.get("hash_type") != "sha256":
        raise SignatureError(f"{repo_id}: {SIGNATURE_NAME} signs with {kind.get('method')}/{kind.get('hash_type')}; "
                             "expected per-file sha256 (model-signing's default)")
    digests = {rd.identifier: rd.digest.digest_hex for rd in manifest.resource_descriptors()}
    return SignedManifest(key.key_id, digests, tuple(str(p) for p in kind.get("ignore_paths", ())))


def check_files(repo_id: str, signed: SignedManifest, actual: Mapping[str, str]) -> None:
    """Compare the files a repo holds with what was signed.

    Args:
        repo_id: The repo, for the messages.
        signed: From :func:`verify_signature`.
        actual: Each path of the repo (all of them; uncovered ones are skipped here) and its sha256.

    Raises:
        SignatureError: naming every file that differs, is not signed, or is signed but missing.
    """
    covered = {p: h for p, h in actual.items() if is_covered(p, signed.ignored)}
    problems = [f"{p} differs from the signed file" for p in sorted(covered)
                if p in signed.digests and covered[p] != signed.digests[p]]
    problems += [f"{p} is not covered by the signature" for p in sorted(set(covered) - set(signed.digests))]
    problems += [f"{p} is signed but missing" for p in sorted(set(signed.digests) - set(covered))]
    if problems:
        raise SignatureError(f"{repo_id}: signature by key {signed.key_id} does not match the files: "
                             + "; ".join(problems))


def directory_digests(directory: Union[str, Path]) -> Dict[str, str]:
    """sha256 of every file under ``directory`` (links followed, as in a Hub cache snapshot), by posix path."""
    directory = Path(directory)
    result = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            result[path.relative_to(directory).as_posix()] = digest.hexdigest()
    return result


def verify_directory(directory: Union[str, Path], repo_id: str, keys: Sequence[TrustedKey]) -> SignedManifest:
    """Verify a repo's local copy: its ``model.sig`` against ``keys``, then every file against it.

    Args:
        directory: The repo's files (e.g. a ``snapshot_download`` folder).
        repo_id: The repo, for the messages.
        keys: The keys trusted for it.

    Returns:
        The verified manifest.

    Raises:
        SignatureError: if ``model.sig`` is missing, untrusted or does not match the files.
    """
    sig = Path(directory) / SIGNATURE_NAME
    if not sig.is_file():
        raise SignatureError(f"{repo_id}: no {SIGNATURE_NAME}; the trust policy requires a signature by "
                             f"{', '.join(k.key_id for k in keys)}")
    signed = verify_signature(sig.read_bytes(), repo_id, keys)
    check_files(repo_id, signed, directory_digests(directory))
    return signed


def sign_directory(directory: Union[str, Path], private_key: Union[str, Path], *,
                   certificate: Optional[Union[str, Path]] = None,
                   certificate_chain: Sequence[Union[str, Path]] = (),
                   password: Optional[str] = None) -> str:
    """Sign every file of ``directory`` into ``directory/model.sig``.

    Args:
        directory: The files to sign (as they will be in the repo).
        private_key: PEM elliptic-curve private key (P-256, P-384 or P-521).
        certificate: Its signing certificate, for certificate mode; key-pair mode without it.
        certificate_chain: Intermediate certificates to embed (certificate mode).
        password: The private key's password, if it is encrypted.

    Returns:
        The signing key's id.

    Raises:
        SignatureError: if the key cannot be read or is not a supported elliptic-curve key.
        ModuleNotFoundError: without model-signing (the ``signing`` extra).
    """
    hashing, signing, _, _, _ = _model_signing()
    directory = Path(directory)
    config = signing.Config()
    try:
        if certificate is None:
            config.use_elliptic_key_signer(private_key=private_key, password=password)
        else:
            config.use_certificate_signer(  # an empty chain fails to parse in model-signing 1.1: repeat the certificate
                private_key=private_key, signing_certificate=certificate,
                certificate_chain=list(certificate_chain) or [certificate])
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"sign_key {str(private_key)!r}: expected a PEM elliptic-curve private key "
                             f"(P-256/384/521){' and its certificate' if certificate else ''}: {exc}") from None
    config.set_hashing_config(hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=True))
    config.sign(directory, directory / SIGNATURE_NAME)
    return signer_key_id((directory / SIGNATURE_NAME).read_bytes()) or ""
