"""What a benchmark runs and how it times it: :class:`BenchConfig`."""
import dataclasses
from typing import Optional

from ..errors import InvalidArgument

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to run and how to time it.

    Args:
        batch_size: Images per step (model mode).
        img_size: Square input resolution (model mode).
        channels_last: Use ``torch.channels_last`` for models and inputs.
        compile: Wrap every candidate in ``torch.compile``.
        train: Time a training step (forward, backward, SGD step) instead of inference.
        device: ``"cpu"`` or ``"cuda"``.
        amp: ``None`` (fp32), ``"bf16"`` or ``"fp16"`` autocast; in layer mode the dtype of
            the layer and its input.
        iters: Steps per timed sample.
        warmup: Untimed steps per candidate before the first sample.
        repeats: Timed samples per candidate.
        threads: CPU threads for torch (``None``: torch's default).
        memory: Measure peak memory.

    Raises:
        ValueError: if a field is out of range.
    """

    batch_size: int = 16
    img_size: int = 224
    channels_last: bool = True
    compile: bool = False
    train: bool = False
    device: str = "cpu"
    amp: Optional[str] = None
    iters: int = 5
    warmup: int = 3
    repeats: int = 7
    threads: Optional[int] = None
    memory: bool = True

    def __post_init__(self):
        for name in ("batch_size", "img_size", "iters", "repeats"):
            check_int(name, getattr(self, name), 1)
        check_int("warmup", self.warmup, 0)
        if self.threads is not None:
            check_int("threads", self.threads, 1)
        if self.device not in ("cpu", "cuda"):
            raise InvalidArgument(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise InvalidArgument(f"amp must be None, 'bf16' or 'fp16', got {self.amp!r}")



def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) >= ``minimum``.

    Raises:
        InvalidArgument: naming ``name``, the minimum and the value otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value

