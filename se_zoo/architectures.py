"""The architecture table: one row per se-zoo architecture, the single place its facts live.

Each row states the architecture's family, its timm twin (the timm architecture
whose checkpoints it loads, or whose non-SE checkpoints its ``seinit`` tags
warm-start from), its plain twin (the registered timm architecture that is it
without SE blocks, if timm has one), and its builder's arguments. Each family
module of ``se_zoo.models`` has one ``@register_model`` entrypoint per row that
takes its arguments from here (:func:`architecture`); :data:`TIMM_EQUIVALENTS`
and :data:`PLAIN_EQUIVALENTS` are derived from the table. Pretrained tags are
not here: ``weights/`` is their only table.

Plain data, torch-free: the CLI and the benchmark read it without importing torch.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["Architecture", "ARCHITECTURES", "FAMILIES", "TIMM_EQUIVALENTS", "PLAIN_EQUIVALENTS", "architecture",
           "by_family"]

#: family -> its description; rows of a family share a builder and a module of ``se_zoo.models``.
FAMILIES: Dict[str, str] = {
    "resnet": "SE-ResNet / SE-ResNeXt on timm's ResNet (stride in the 3x3 conv)",
    "senet": "Caffe-layout SENets on timm's legacy SENet (the paper's released weights)",
    "mobilenetv1": "SE-MobileNet-V1 on timm's EfficientNet builder (SE on every block output)",
    "mobilenetv2": "SE-MobileNet-V2 on timm's EfficientNet builder (SE after every depthwise conv)",
}


@dataclass(frozen=True)
class Architecture:
    """One se-zoo architecture.

    Args:
        name: The registered name (``se_zoo_*``).
        family: A key of :data:`FAMILIES`.
        timm_twin: The timm architecture whose checkpoints it loads
            (``strict=True`` for the ResNets and SENets; non-SE warm start for
            the MobileNets); its untagged pretrained cfg is this one's.
        plain_twin: The registered timm architecture that is this one without
            SE blocks, None where timm has none.
        args: The family builder's arguments for this architecture; block
            classes are named by the builder's keys (e.g. ``"bottleneck"``).
    """

    name: str
    family: str
    timm_twin: str
    plain_twin: Optional[str]
    args: Mapping[str, Any] = field(default_factory=dict)


def _resnet(depth: str, block: str, layers: Tuple[int, ...], **args) -> Architecture:
    name = f"{'resnext' if 'cardinality' in args else 'resnet'}{depth}"
    return Architecture(f"se_zoo_{name}", "resnet", f"se{name}", name, dict(block=block, layers=layers, **args))


def _legacy(twin: str, block: str, layers: Tuple[int, ...], groups: int, **args) -> Architecture:
    name = "se_zoo_senet154" if twin == "legacy_senet154" else f"se_zoo_{twin}"
    args = dict(block=block, layers=layers, groups=groups, reduction=16, **args)
    return Architecture(name, "senet", twin, None, args)


def _mobilenet(version: int, width: str, timm_twin: str, plain: Optional[str]) -> Architecture:
    return Architecture(f"se_zoo_mobilenetv{version}_{width}", f"mobilenetv{version}", timm_twin, plain,
                        dict(channel_multiplier=int(width) / 100))


ARCHITECTURES: Tuple[Architecture, ...] = (
    _resnet("18", "basic", (2, 2, 2, 2)),
    _resnet("34", "basic", (3, 4, 6, 3)),
    _resnet("50", "bottleneck", (3, 4, 6, 3)),
    _resnet("101", "bottleneck", (3, 4, 23, 3)),
    _resnet("152", "bottleneck", (3, 8, 36, 3)),
    _resnet("50_32x4d", "bottleneck", (3, 4, 6, 3), cardinality=32, base_width=4),
    _resnet("101_32x4d", "bottleneck", (3, 4, 23, 3), cardinality=32, base_width=4),
    _legacy("legacy_seresnet18", "resnet_block", (2, 2, 2, 2), 1),
    _legacy("legacy_seresnet34", "resnet_block", (3, 4, 6, 3), 1),
    _legacy("legacy_seresnet50", "resnet_bottleneck", (3, 4, 6, 3), 1),
    _legacy("legacy_seresnet101", "resnet_bottleneck", (3, 4, 23, 3), 1),
    _legacy("legacy_seresnet152", "resnet_bottleneck", (3, 8, 36, 3), 1),
    _legacy("legacy_seresnext26_32x4d", "resnext_bottleneck", (2, 2, 2, 2), 32),
    _legacy("legacy_seresnext50_32x4d", "resnext_bottleneck", (3, 4, 6, 3), 32),
    _legacy("legacy_seresnext101_32x4d", "resnext_bottleneck", (3, 4, 23, 3), 32),
    _legacy("legacy_senet154", "senet_bottleneck", (3, 8, 36, 3), 64,
            downsample_kernel_size=3, downsample_padding=1, inplanes=128, input_3x3=True),
    # timm has no MobileNet-V1 at widths 0.75 / 0.5: their twin is the closest timm V1,
    # whose checkpoints do not fit them (different widths), and they have no plain twin.
    _mobilenet(1, "050", "mobilenetv1_100", None),
    _mobilenet(1, "075", "mobilenetv1_100", None),
    _mobilenet(1, "100", "mobilenetv1_100", "mobilenetv1_100"),
    _mobilenet(2, "050", "mobilenetv2_050", "mobilenetv2_050"),
    _mobilenet(2, "075", "mobilenetv2_075", "mobilenetv2_075"),
    _mobilenet(2, "100", "mobilenetv2_100", "mobilenetv2_100"),
    _mobilenet(2, "140", "mobilenetv2_140", "mobilenetv2_140"),
)

#: Every se-zoo architecture -> its timm twin.
TIMM_EQUIVALENTS: Dict[str, str] = {a.name: a.timm_twin for a in ARCHITECTURES}

#: se-zoo architecture -> the registered timm architecture that is it without SE blocks.
PLAIN_EQUIVALENTS: Dict[str, str] = {a.name: a.plain_twin for a in ARCHITECTURES if a.plain_twin}

_BY_NAME: Dict[str, Architecture] = {a.name: a for a in ARCHITECTURES}


def architecture(name: str) -> Architecture:
    """The row of one architecture.

    Args:
        name: A registered se-zoo architecture name (``se_zoo_*``, no tag).

    Returns:
        Its row of :data:`ARCHITECTURES`.

    Raises:
        ValueError: if ``name`` is not in the table.
    """
    if name not in _BY_NAME:
        raise ValueError(f"name must be a se-zoo architecture (one of {len(_BY_NAME)} in the table), got {name!r}")
    return _BY_NAME[name]


def by_family(*families: str) -> Tuple[Architecture, ...]:
    """The rows of the given families, in table order.

    Args:
        *families: Keys of :data:`FAMILIES`.

    Returns:
        The matching rows.

    Raises:
        ValueError: if a family is not a key of :data:`FAMILIES`.
    """
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"families must be among {sorted(FAMILIES)}, got {unknown}")
    return tuple(a for a in ARCHITECTURES if a.family in families)
