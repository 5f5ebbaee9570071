"""Where a model's weights came from: :class:`WeightsOrigin`, kept on the model as ``weights_origin``.

se-zoo records the origin wherever it creates or loads weights:

* ``timm.create_model`` of an se-zoo architecture (its entrypoint): random
  initialization, a ``weights/`` catalogue tag (with the sha256 the catalogue
  pins and se-zoo checked), a checkpoint file (``pretrained_cfg_overlay=
  dict(file=...)``, ``local-dir:``) or a Hub repo (``hf-hub:``, with the
  commit the weights were downloaded at);
* ``timm.create_model(..., checkpoint_path=...)`` and
  ``timm.models.load_checkpoint``: the checkpoint file;
* :func:`se_zoo.hub.pull` / ``from_pretrained``: the Hub repo, its commit and
  the verified sha256;
* ``se_zoo.train``: the training run, with its run record.

Any other ``load_state_dict`` on the model replaces the origin with
``unknown``: se-zoo did not see where those weights came from. A model se-zoo
never saw has no origin (:func:`weights_origin` answers ``unknown``).

``save_pretrained`` writes the origin into ``config.json`` (``weights_origin``),
so a model loaded back from that folder or its Hub repo knows what the file
recorded (``previous``): a re-published random initialization stays marked
untrained, and only a catalogue tag's own weights keep that tag.

The origin is a plain attribute holding a frozen dataclass: it survives
``deepcopy``, ``.to()`` and pickling with the model.
"""
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

__all__ = ["ORIGIN_KINDS", "ORIGIN_ATTRIBUTE", "CONFIG_KEY", "WeightsOrigin", "weights_origin",
           "set_weights_origin", "record_build_origin", "recorded_origin"]

#: The kinds of origin and the fields each one requires.
ORIGIN_KINDS: Dict[str, Tuple[str, ...]] = {
    "random_init": (),
    "catalogue": ("tag",),
    "checkpoint": ("path",),
    "hub": ("repo_id",),
    "training": ("run",),
    "unknown": ("note",),
}
#: The model attribute that holds the origin.
ORIGIN_ATTRIBUTE = "weights_origin"
#: The ``config.json`` key ``save_pretrained`` records the origin under.
CONFIG_KEY = "weights_origin"

_SAFE_WEIGHTS_NAME = "model.safetensors"
_PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
_CONFIG_NAME = "config.json"
_UNSEEN = "se-zoo did not create or load this model's weights"
_LOADED_UNSEEN = "weights loaded with load_state_dict after creation; se-zoo did not see from where"


@dataclass(frozen=True)
class WeightsOrigin:
    """Where a model's weights came from.

    Attributes:
        kind: One of :data:`ORIGIN_KINDS`: ``random_init``, ``catalogue``,
            ``checkpoint``, ``hub``, ``training`` or ``unknown``.
        tag: ``catalogue``: the ``arch.tag`` whose weights were loaded.
        sha256: ``catalogue``: the catalogue's pin, checked before loading;
            ``hub``: the weights file's sha256 when se-zoo verified it.
        path: ``checkpoint``: the weights file or URL loaded.
        repo_id: ``hub``: the repo.
        commit: ``hub``: the commit the weights were read at (None when the
            download cache does not tell).
        run: ``training``: the ``se-zoo train`` run record.
        note: ``unknown``: why the origin is not known.
        previous: ``checkpoint`` / ``hub``: the origin the loaded files
            recorded (their ``config.json``), when they recorded one.

    Raises:
        ValueError: if ``kind`` is unknown, a field the kind needs is missing,
            or ``previous`` is set on a kind that loads no files.
        TypeError: if ``previous`` is not a :class:`WeightsOrigin`.

    Example:
        >>> WeightsOrigin("catalogue", tag="se_zoo_resnet50.a1_in1k").describe()
        "the se-zoo catalogue's `se_zoo_resnet50.a1_in1k` (the catalogue pins no sha256 for it)"
    """

    kind: str
    tag: Optional[str] = None
    sha256: Optional[str] = None
    path: Optional[str] = None
    repo_id: Optional[str] = None
    commit: Optional[str] = None
    run: Optional[Mapping[str, Any]] = None
    note: Optional[str] = None
    previous: Optional["WeightsOrigin"] = None

    def __post_init__(self) -> None:
        if self.kind not in ORIGIN_KINDS:
            raise ValueError(f"kind must be one of {sorted(ORIGIN_KINDS)}, got {self.kind!r}")
        missing = [name for name in ORIGIN_KINDS[self.kind] if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind!r} origin needs {', '.join(missing)}, got none")
        if self.previous is not None and self.kind not in ("checkpoint", "hub"):
            raise ValueError(f"previous applies to 'checkpoint' and 'hub' origins, got it on a {self.kind!r} one")
        if self.previous is not None and not isinstance(self.previous, WeightsOrigin):
            raise TypeError(f"previous must be a WeightsOrigin, got {type(self.previous).__name__}")

    def _chain(self):
        origin: Optional[WeightsOrigin] = self
        while origin is not None:
            yield origin
            origin = origin.previous

    @property
    def untrained(self) -> bool:
        """Whether the weights are a random initialization, however often they were saved and loaded since."""
        return any(o.kind == "random_init" for o in self._chain())

    @property
    def catalogue_tag(self) -> Optional[str]:
        """The catalogue tag whose weights these are (through saves and loads), else None."""
        return next((o.tag for o in self._chain() if o.kind == "catalogue"), None)

    @property
    def training_run(self) -> Optional[Mapping[str, Any]]:
        """The run record of the ``se-zoo train`` run that produced these weights, else None."""
        return next((o.run for o in self._chain() if o.kind == "training"), None)

    @property
    def from_random_init(self) -> bool:
        """Whether nothing in the weights comes from published weights: untrained, or trained from scratch."""
        run = self.training_run
        return self.untrained or (run is not None and not run.get("pretrained"))

    def describe(self) -> str:
        """One Markdown sentence for a model card's "Weights" line.

        Returns:
            The origin in words, with the previous origin the files recorded.
        """
        if self.kind == "random_init":
            return "**untrained (random initialization)**: a starting point for training, not for predictions"
        if self.kind == "catalogue":
            pin = f", sha256 `{self.sha256}` checked against the catalogue's pin" if self.sha256 else \
                " (the catalogue pins no sha256 for it)"
            return f"the se-zoo catalogue's `{self.tag}`{pin}"
        if self.kind == "training":
            return "trained with `se-zoo train` (see Training)"
        if self.kind == "unknown":
            return f"origin not recorded: {self.note}"
        if self.kind == "hub":
            text = f"loaded from the Hub repo `{self.repo_id}`" + (
                f" at commit `{self.commit}`" if self.commit else " (commit not resolved)")
            if self.sha256:
                text += f", sha256 `{self.sha256}` verified"
        else:
            text = f"loaded from the checkpoint `{_published(self.path)}`"
        return text + (f"; recorded there as: {self.previous.describe()}" if self.previous else "")

    def to_dict(self) -> Dict[str, Any]:
        """The origin as JSON values (what ``config.json`` records).

        A local checkpoint path is written as its file name: what is saved gets
        published, and the folders of the machine that saved it are not part of
        the record (URLs are kept whole).

        Returns:
            ``{"kind": ..., <the fields that are set>}``, ``previous`` nested.
        """
        values: Dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                values[f.name] = value.to_dict() if f.name == "previous" else (
                    dict(value) if f.name == "run" else _published(value) if f.name == "path" else value)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "WeightsOrigin":
        """Read an origin written by :meth:`to_dict`.

        Args:
            values: The dict.

        Returns:
            The origin.

        Raises:
            ValueError: if a key is unknown or the kind's fields are missing.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"weights origin keys must be among {sorted(names)}, got {unknown}")
        values = dict(values)
        if values.get("previous") is not None:
            values["previous"] = cls.from_dict(values["previous"])
        return cls(**values)


def _published(path: str) -> str:
    """A checkpoint location as cards and ``config.json`` show it: a URL whole, a local path by its file name."""
    return path if "://" in path else Path(path).name


def weights_origin(model: Any) -> WeightsOrigin:
    """Where ``model``'s weights came from, as se-zoo recorded it.

    Args:
        model: A model (any object; se-zoo's models carry the origin).

    Returns:
        The recorded origin, or an ``unknown`` one when se-zoo recorded none.
    """
    origin = getattr(model, ORIGIN_ATTRIBUTE, None)
    return origin if isinstance(origin, WeightsOrigin) else WeightsOrigin("unknown", note=_UNSEEN)


def set_weights_origin(model: Any, origin: WeightsOrigin) -> Any:
    """Record ``origin`` on ``model``; a later ``load_state_dict`` on it replaces it.

    Args:
        model: A ``torch.nn.Module``.
        origin: Where its weights came from.

    Returns:
        ``model``.

    Raises:
        TypeError: if ``origin`` is not a :class:`WeightsOrigin`.
    """
    if not isinstance(origin, WeightsOrigin):
        raise TypeError(f"origin must be a WeightsOrigin, got {type(origin).__name__}")
    if _after_load_state_dict not in getattr(model, "_load_state_dict_post_hooks", {}).values():
        model.register_load_state_dict_post_hook(_after_load_state_dict)
    model.__dict__[ORIGIN_ATTRIBUTE] = origin
    return model


def _timm_checkpoint_path() -> Optional[str]:
    """The ``checkpoint_path`` of ``timm.models.load_checkpoint`` when it is the caller of this load.

    timm's ``create_model(..., checkpoint_path=...)`` loads the file after the
    entrypoint returned, through ``load_checkpoint`` -> ``model.load_state_dict``;
    the post-hook sees that call only from the stack. Anything else is None.
    """
    frame = sys._getframe(1)
    for _ in range(6):
        if frame is None:
            return None
        if frame.f_code.co_name == "load_checkpoint" and frame.f_globals.get("__name__", "").startswith("timm."):
            path = frame.f_locals.get("checkpoint_path")
            return str(path) if path else None
        frame = frame.f_back
    return None


def _after_load_state_dict(module: Any, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: weights came in from outside, so the origin changes."""
    path = _timm_checkpoint_path()
    module.__dict__[ORIGIN_ATTRIBUTE] = (
        WeightsOrigin("checkpoint", path=path, previous=_recorded_next_to(Path(path))) if path
        else WeightsOrigin("unknown", note=_LOADED_UNSEEN))


def recorded_origin(config_path: Union[None, str, Path]) -> Optional[WeightsOrigin]:
    """The origin a ``config.json`` written by ``save_pretrained`` records.

    Args:
        config_path: The ``config.json`` (None or a missing file: nothing recorded).

    Returns:
        The origin, or None when the file records none (or cannot be read).
    """
    if config_path is None or not Path(config_path).is_file():
        return None
    try:
        values = json.loads(Path(config_path).read_text()).get(CONFIG_KEY)
        return WeightsOrigin.from_dict(values) if isinstance(values, dict) else None
    except (ValueError, TypeError):
        return None  # a foreign or damaged record claims nothing


def _recorded_next_to(weights: Path) -> Optional[WeightsOrigin]:
    """What the ``config.json`` beside a ``save_pretrained`` weights file records."""
    if weights.name not in (_SAFE_WEIGHTS_NAME, _PICKLE_WEIGHTS_NAME):
        return None
    return recorded_origin(weights.parent / _CONFIG_NAME)


def _catalogue_record(variant: str, cfg: Any) -> Optional[Dict[str, Any]]:
    """The catalogue record of ``cfg``'s tag when the cfg loads that record's weights (as ``verify_pinned``)."""
    from .pretrained.catalog import find_record

    record = find_record(f"{variant}.{cfg.tag}") if cfg.tag else None
    if not record:
        return None
    if record.get("hf_hub_id") and cfg.hf_hub_id == record["hf_hub_id"]:
        return record
    if record.get("url") and not cfg.hf_hub_id and cfg.url == record["url"]:
        return record
    return None


def _hub_origin(hub_id: str, filename: Optional[str], cache_dir: Any) -> WeightsOrigin:
    """A Hub load, its commit read from huggingface_hub's cache (the download just filled it)."""
    from huggingface_hub import try_to_load_from_cache

    repo_id, _, revision = hub_id.partition("@")
    for name in ([filename] if filename else [_SAFE_WEIGHTS_NAME, _PICKLE_WEIGHTS_NAME]):
        path = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir, revision=revision or None)
        if isinstance(path, str):
            commit = Path(path).parent.name  # snapshots/<commit>/<filename>
            config = try_to_load_from_cache(repo_id, _CONFIG_NAME, cache_dir=cache_dir, revision=commit)
            return WeightsOrigin("hub", repo_id=repo_id, commit=commit,
                                 previous=recorded_origin(config if isinstance(config, str) else None))
    return WeightsOrigin("hub", repo_id=repo_id)


def _origin_of_build(variant: str, pretrained: bool, kwargs: Mapping[str, Any]) -> WeightsOrigin:
    if not pretrained:
        return WeightsOrigin("random_init")
    from timm.models import resolve_pretrained_cfg
    from timm.models._builder import _resolve_pretrained_source

    cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay"))
    load_from, location = _resolve_pretrained_source(cfg.to_dict())  # timm's own choice of source
    if load_from == "state_dict":
        return WeightsOrigin("unknown", note="an in-memory state dict passed as pretrained_cfg_overlay['state_dict']")
    if load_from == "local-dir":
        directory = Path(location)
        weights = directory / _SAFE_WEIGHTS_NAME
        weights = weights if weights.is_file() else directory / _PICKLE_WEIGHTS_NAME
        return WeightsOrigin("checkpoint", path=str(weights), previous=_recorded_next_to(weights))
    if load_from == "file":
        return WeightsOrigin("checkpoint", path=str(location), previous=_recorded_next_to(Path(location)))
    if cfg.source != "hf-hub":
        record = _catalogue_record(variant, cfg)
        if record is not None:
            return WeightsOrigin("catalogue", tag=record["tag"], sha256=record.get("sha256") or None)
    if load_from == "url":
        return WeightsOrigin("checkpoint", path=str(location))
    hub_id, filename = location if isinstance(location, (tuple, list)) else (location, None)
    return _hub_origin(hub_id, filename, kwargs.get("cache_dir"))


def record_build_origin(model: Any, variant: str, pretrained: bool, kwargs: Mapping[str, Any]) -> Any:
    """Record on a just-built model where timm's builder took its weights from.

    Called by se-zoo's entrypoints with the arguments timm gave them, so the
    source is resolved exactly as timm's ``load_pretrained`` resolved it.

    Args:
        model: The built model.
        variant: The architecture name.
        pretrained: Whether pretrained weights were asked for.
        kwargs: The entrypoint's keyword arguments (``pretrained_cfg``,
            ``pretrained_cfg_overlay``, ``cache_dir``, ...).

    Returns:
        ``model``.
    """
    return set_weights_origin(model, _origin_of_build(variant, pretrained, kwargs))
