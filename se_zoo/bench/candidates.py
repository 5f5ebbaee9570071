"""The models a comparison times: the se-zoo model, its timm counterpart and its plain (non-SE) twin."""
import dataclasses
from typing import TYPE_CHECKING, List, Tuple

from ..architectures import PLAIN_EQUIVALENTS  # se-zoo architecture -> its plain (non-SE) timm twin
from ..errors import InvalidArgument
from .config import BenchConfig

if TYPE_CHECKING:
    import torch

# Architectures without a plain twin (Caffe-layout SENets, MobileNet-V1 at widths timm lacks) are
# benchmarked against their timm counterpart with its SE layers replaced by identities.


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One model of a comparison.

    Args:
        label: Name shown in the table.
        role: ``"se-zoo"``, ``"timm"`` (the baseline) or ``"plain"`` (no SE).
        arch: The timm architecture to create.
        se: ``"own"`` keeps the SE layers of ``arch``, ``"none"`` replaces them by
            identities, ``"timm"`` replaces se-zoo's by timm's.
    """

    label: str
    role: str
    arch: str
    se: str = "own"



def model_candidates(name: str) -> List[Candidate]:
    """The se-zoo model ``name``, its timm counterpart and its plain twin.

    Args:
        name: An se-zoo architecture (a key of ``se_zoo.TIMM_EQUIVALENTS``).

    Returns:
        Candidates in timing order: se-zoo, timm (the baseline), plain.

    Raises:
        ValueError: if ``name`` is not an se-zoo architecture.
    """
    from ..models import TIMM_EQUIVALENTS

    if name not in TIMM_EQUIVALENTS:
        raise InvalidArgument(f"model must be an se-zoo architecture ({', '.join(sorted(TIMM_EQUIVALENTS))}), "
                         f"got {name!r}")
    reference = TIMM_EQUIVALENTS[name]
    if _count_se(reference):
        timm_se = Candidate(reference, "timm", reference)
    else:  # timm has this architecture without SE only
        timm_se = Candidate(f"{name} (timm SE)", "timm", name, se="timm")
    plain = PLAIN_EQUIVALENTS.get(name)
    return [
        Candidate(name, "se-zoo", name),
        timm_se,
        Candidate(plain, "plain", plain) if plain else
        Candidate(f"{timm_se.label} without SE", "plain", timm_se.arch, se="none"),
    ]


def _se_types() -> Tuple[type, ...]:
    from timm.layers import SEModule
    from timm.models import senet
    from timm.models._efficientnet_blocks import SqueezeExcite as EfficientNetSE

    from ..layers import SqueezeExcite

    return SEModule, senet.SEModule, EfficientNetSE, SqueezeExcite


def _count_se(arch: str) -> int:
    """SE layers in ``arch``, built on the meta device (no memory, no init cost)."""
    import timm
    import torch

    from .. import models  # noqa: F401  (registers the se-zoo architectures)

    with torch.device("meta"):
        return sum(isinstance(m, _se_types()) for m in timm.create_model(arch).modules())


def _replace_se(model: "torch.nn.Module", se: str) -> int:
    """Replace the SE layers of ``model`` by identities (``se="none"``) or timm's (``"timm"``, fresh weights)."""
    from timm.models._efficientnet_blocks import SqueezeExcite as EfficientNetSE
    from torch import nn

    from ..layers import SqueezeExcite

    count = 0
    for module in list(model.modules()):
        for child_name, child in module.named_children():
            if se == "none" and isinstance(child, _se_types()):
                setattr(module, child_name, nn.Identity())
            elif se == "timm" and isinstance(child, SqueezeExcite):
                if child.fc1.bias is None:
                    raise ValueError(f"timm's SqueezeExcite always has biases; {child_name} has none")
                timm_se = EfficientNetSE(child.channels, rd_channels=child.fc1.out_channels,
                                         act_layer=type(child.act), gate_layer=type(child.gate))
                setattr(module, child_name, timm_se)
            else:
                continue
            count += 1
    return count


def _copy_weights(source: "torch.nn.Module", target: "torch.nn.Module") -> None:
    # By position: the timm counterpart has se-zoo's tensors in se-zoo's order, and
    # its own names for the SE convs when they are timm's EfficientNet SE layers.
    import torch

    src, dst = list(source.state_dict().values()), list(target.state_dict().values())
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        raise ValueError(f"{type(target).__name__} does not have the tensors of {type(source).__name__}")
    with torch.no_grad():
        for a, b in zip(src, dst):
            b.copy_(a)


def _randomize_norms(model: "torch.nn.Module", seed: int = 0) -> None:
    # Fresh BN layers are identities (and timm zero-inits the last BN of each
    # block), which would make the logits check blind to the SE branch.
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for t, lo, hi in ((m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2),
                                  (m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 1.5)):
                    t.copy_(torch.empty(t.shape).uniform_(lo, hi, generator=gen))


def _build(candidate: Candidate, cfg: BenchConfig) -> "torch.nn.Module":
    import timm
    import torch

    from .. import models  # noqa: F401  (registers the se-zoo architectures)

    if candidate.se not in ("own", "none", "timm"):
        raise ValueError(f"se must be 'own', 'none' or 'timm', got {candidate.se!r}")
    model = timm.create_model(candidate.arch)
    if candidate.se != "own" and _replace_se(model, candidate.se) == 0:
        raise ValueError(f"{candidate.arch} has no SE layer to replace")
    model = model.to(cfg.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train(cfg.train)


