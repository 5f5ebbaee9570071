"""Save, push and pull se-zoo models on the Hugging Face Hub (or any Hub-compatible server).

:func:`save_pretrained` writes the layout timm's ``hf-hub:`` loader reads
(``model.safetensors``, ``config.json``, ``README.md``); :func:`push_to_hub`
commits it. The card's "Weights" line, its "untrained" warning and the
config's tag follow the model's :class:`~se_zoo.provenance.WeightsOrigin`.
:func:`from_pretrained` / :func:`pull` load a repo after checking the weights'
sha256 against the Hub's record and the ``weights/`` catalogue. ``push_to_hub(sign_key=...)``
signs a commit (``model.sig``); with ``SE_ZOO_TRUSTED_KEYS`` set, loads verify it first
(:mod:`se_zoo.hub.trust`, docs/security.md).
Endpoint, token, cache and offline mode are huggingface_hub's (``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HOME``, ``HF_HUB_OFFLINE``).
"""
from ..pretrained.integrity import IntegrityError
from ..provenance import WeightsOrigin, weights_origin
from .card import CardOptions, model_card
from .pull import PullResult, from_pretrained, pull
from .push import PushResult, push_to_hub
from .save import save_pretrained

__all__ = [
    "CardOptions", "IntegrityError", "PullResult", "PushResult", "WeightsOrigin",
    "from_pretrained", "model_card", "pull", "push_to_hub", "save_pretrained", "weights_origin",
]
