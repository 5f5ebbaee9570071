"""The architecture table: one row per se-zoo architecture, the single place its facts live.

Each row states the architecture's family, its timm twin (the timm architecture
whose checkpoints it loads, or whose non-SE checkpoints its ``seinit`` tags
warm-start from), its plain twin (the registered timm architecture that is it
without SE blocks, if timm has one), and its builder with the builder's
arguments. ``se_zoo.models`` registers the architectures with timm from this
table; :data:`TIMM_EQUIVALENTS` and :data:`PLAIN_EQUIVALENTS` are derived from
it. Pretrained tags are not here: ``weights/`` is their only table.

Plain data, torch-free: the CLI and the benchmark read it without importing torch.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["Architecture", "ARCHITECTURES", "FAMILIES", "TIMM_EQUIVALENTS", "PLAIN_EQUIVALENTS", "by_family"]

#: family -> its description; rows of a family share a builder and a timm module name.
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
        builder: The family's builder in ``se_zoo.models`` (``module.function``).
        args: The builder's arguments for this architecture; block classes are
            named by the builder's keys (e.g. ``"bottleneck"``).
        summary: One line, the entrypoint's docstring.
    """

    name: str
    family: str
    timm_twin: str
    plain_twin: Optional[str]
    builder: str
    args: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


def _resnet(depth: str, block: str, layers: Tuple[int, ...], **args) -> Architecture:
    kind = "resnext" if "cardinality" in args else "resnet"
    name = f"{kind}{depth}"
    label = f"SE-ResNeXt-{depth.replace('_', ' ')}" if kind == "resnext" else f"SE-ResNet-{depth}"
    return Architecture(
        f"se_zoo_{name}", "resnet", f"se{name}", name, "se_resnet.create_resnet",
        dict(block=block, layers=layers, **args), f"{label} (timm ``se{name}`` layout).")


def _legacy(twin: str, block: str, layers: Tuple[int, ...], groups: int, summary: str, **args) -> Architecture:
    name = "se_zoo_senet154" if twin == "legacy_senet154" else f"se_zoo_{twin}"
    return Architecture(
        name, "senet", twin, None, "se_resnet.create_legacy_senet",
        dict(block=block, layers=layers, groups=groups, reduction=16, **args), summary)


def _mobilenet(version: int, width: str, timm_twin: str, plain: Optional[str]) -> Architecture:
    summary = f"SE-MobileNet-V{version}, width {int(width) / 100:g}" + (f" (timm ``{plain}`` + SE)." if plain else ".")
    return Architecture(
        f"se_zoo_mobilenetv{version}_{width}", f"mobilenetv{version}", timm_twin, plain,
        f"se_mobilenet.create_mobilenet_v{version}", dict(channel_multiplier=int(width) / 100), summary)


ARCHITECTURES: Tuple[Architecture, ...] = (
    _resnet("18", "basic", (2, 2, 2, 2)),
    _resnet("34", "basic", (3, 4, 6, 3)),
    _resnet("50", "bottleneck", (3, 4, 6, 3)),
    _resnet("101", "bottleneck", (3, 4, 23, 3)),
    _resnet("152", "bottleneck", (3, 8, 36, 3)),
    _resnet("50_32x4d", "bottleneck", (3, 4, 6, 3), cardinality=32, base_width=4),
    _resnet("101_32x4d", "bottleneck", (3, 4, 23, 3), cardinality=32, base_width=4),
    _legacy("legacy_seresnet18", "resnet_block", (2, 2, 2, 2), 1,
            "SE-ResNet-18, Caffe layout (timm ``legacy_seresnet18``)."),
    _legacy("legacy_seresnet34", "resnet_block", (3, 4, 6, 3), 1,
            "SE-ResNet-34, Caffe layout (timm ``legacy_seresnet34``)."),
    _legacy("legacy_seresnet50", "resnet_bottleneck", (3, 4, 6, 3), 1,
            "SE-ResNet-50, Caffe layout of the paper's weights (timm ``legacy_seresnet50``)."),
    _legacy("legacy_seresnet101", "resnet_bottleneck", (3, 4, 23, 3), 1,
            "SE-ResNet-101, Caffe layout of the paper's weights (timm ``legacy_seresnet101``)."),
    _legacy("legacy_seresnet152", "resnet_bottleneck", (3, 8, 36, 3), 1,
            "SE-ResNet-152, Caffe layout of the paper's weights (timm ``legacy_seresnet152``)."),
    _legacy("legacy_seresnext26_32x4d", "resnext_bottleneck", (2, 2, 2, 2), 32,
            "SE-ResNeXt-26 32x4d, Caffe layout (timm ``legacy_seresnext26_32x4d``)."),
    _legacy("legacy_seresnext50_32x4d", "resnext_bottleneck", (3, 4, 6, 3), 32,
            "SE-ResNeXt-50 32x4d, Caffe layout of the paper's weights (timm ``legacy_seresnext50_32x4d``)."),
    _legacy("legacy_seresnext101_32x4d", "resnext_bottleneck", (3, 4, 23, 3), 32,
            "SE-ResNeXt-101 32x4d, Caffe layout of the paper's weights (timm ``legacy_seresnext101_32x4d``)."),
    _legacy("legacy_senet154", "senet_bottleneck", (3, 8, 36, 3), 64,
            "SENet-154, the paper's ILSVRC 2017 winning model (timm ``legacy_senet154``).",
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
