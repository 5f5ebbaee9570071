"""timm's ``hf-hub:`` loading verifies signed repos when a trust policy (``SE_ZOO_TRUSTED_KEYS``) covers them.

:func:`install` wraps timm's ``load_model_config_from_hf`` (the config is read at the commit
:func:`se_zoo.hub.trust.verified_snapshot` verified, which the weights then follow) and
``load_state_dict_from_hf`` (the safetensors bytes are checked against the signed sha256 before they
are deserialised). ``se_zoo`` calls it when it registers its models with timm. Without the variable
the wrappers only pass through, and nothing of ``se_zoo.hub`` is imported.
"""
import os
from typing import Any, Optional, Tuple

from .registry.signing import TRUSTED_KEYS_ENV

__all__ = ["install"]


def _split(model_id: str) -> Tuple[str, Optional[str]]:
    repo, _, revision = model_id.partition("@")
    return repo, revision or None


def _verified(model_id: str, cache_dir: Any):
    """``(repo, revision, verified_snapshot result or None)``; None without a policy."""
    repo, revision = _split(model_id)
    if not os.environ.get(TRUSTED_KEYS_ENV, "").strip():
        return repo, revision, None
    from .hub.trust import verified_snapshot

    return repo, revision, verified_snapshot(repo, revision, cache_dir)


def install() -> None:
    """Wrap timm's two ``hf-hub:`` loaders (idempotent)."""
    from timm.models import _builder, _factory

    if getattr(_factory.load_model_config_from_hf, "_se_zoo_trust", False):
        return
    load_config, load_state = _factory.load_model_config_from_hf, _builder.load_state_dict_from_hf

    def load_model_config_from_hf(model_id: str, cache_dir: Any = None, **kwargs: Any):
        repo, _, trusted = _verified(model_id, cache_dir)
        if trusted is not None:
            model_id = f"{repo}@{trusted[0]}"  # the weights are read at the commit verified here
        return load_config(model_id, cache_dir=cache_dir, **kwargs)

    def load_state_dict_from_hf(model_id: str, filename: str = "pytorch_model.bin", *args: Any,
                                cache_dir: Any = None, **kwargs: Any):
        repo, _, trusted = _verified(model_id, cache_dir)
        if trusted is None:
            return load_state(model_id, filename, *args, cache_dir=cache_dir, **kwargs)
        commit, signed = trusted
        from huggingface_hub import hf_hub_download
        from safetensors.torch import load as load_safetensors

        from .hub.trust import signed_bytes
        from .pretrained.integrity import SAFE_WEIGHTS_NAME
        from .registry.signing import SignatureError

        name = SAFE_WEIGHTS_NAME if SAFE_WEIGHTS_NAME in signed.digests else filename
        if not name.endswith(".safetensors"):
            raise SignatureError(f"{repo}: signed repos load {SAFE_WEIGHTS_NAME} only; it has none "
                                 f"(se-zoo never unpickles {filename} from a signed repo through timm)")
        path = hf_hub_download(repo, name, revision=commit, cache_dir=cache_dir)
        return load_safetensors(signed_bytes(path, repo, name, signed))

    load_model_config_from_hf._se_zoo_trust = True
    _factory.load_model_config_from_hf = load_model_config_from_hf
    _builder.load_state_dict_from_hf = load_state_dict_from_hf
