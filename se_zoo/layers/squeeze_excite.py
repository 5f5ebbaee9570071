"""Squeeze-and-Excitation layer.

Paper: "Squeeze-and-Excitation Networks", Hu et al., CVPR 2018 / TPAMI 2019
(https://arxiv.org/abs/1709.01507).

The layer computes, for an input ``u`` of shape ``(N, C, H, W)``:

* squeeze (eq. 2): ``z = mean_{H,W}(u)``;
* excitation (eq. 3): ``s = gate(W2 · act(W1 · z))`` with ``W1: C -> C/r`` and
  ``W2: C/r -> C`` (ReLU and sigmoid in the paper);
* scale: ``u * s`` channel-wise.

Additions over the paper:

* the reduced width is rounded to a multiple of ``rd_divisor`` and is never
  below 1 (``C // r`` would give an empty bottleneck when ``C < r``);
* ``rd_channels`` may be given directly; ``bias``, ``act_layer`` and
  ``gate_layer`` are configurable;
* the FCs are 1×1 convolutions named ``fc1`` / ``fc2``, exactly like timm's
  ``SEModule``, so state dicts move between the two with ``strict=True``;
* :meth:`SqueezeExcite.scale_add` / :meth:`SqueezeExcite.scale_add_act` fuse
  the scale with a residual add (and an activation), so SE blocks cost one
  pass over the feature map in inference; :meth:`SqueezeExcite.residual` is
  the whole SE epilogue of a residual block (gate, scale, add, stochastic depth).

Input checks raise clear ``ValueError`` in eager mode and are skipped while a
graph is captured (TorchScript scripting or tracing, ``torch.fx`` symbolic
tracing, ``torch.compile`` / ``torch.export``), where shapes are symbolic: the
captured graph computes exactly what eager mode computes for valid input.
"""
import math
from typing import Optional, Type, Union

import torch
from torch import nn

try:
    from torch.fx._symbolic_trace import is_fx_symbolic_tracing
except ImportError:  # older torch (2.4): one flag, set by fx.symbolic_trace only; compiling is asked below
    from torch.fx._symbolic_trace import is_fx_tracing as is_fx_symbolic_tracing

from timm.layers import create_act_layer, drop_path, make_divisible

__all__ = ["SqueezeExcite", "reduced_channels", "capturing_graph"]


def capturing_graph() -> bool:
    """Whether the caller runs under graph capture rather than in eager mode.

    Returns:
        True under ``torch.jit.trace`` (and the TorchScript ONNX exporter),
        ``torch.fx`` symbolic tracing (``create_feature_extractor``, timm's FX
        features) and ``torch.compile`` / ``torch.export``. Scripted code asks
        ``torch.jit.is_scripting()`` first: this function is not scriptable.
    """
    return torch.jit.is_tracing() or is_fx_symbolic_tracing() or torch.compiler.is_compiling()


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_reduction(reduction: object) -> float:
    if (isinstance(reduction, bool) or not isinstance(reduction, (int, float))
            or not math.isfinite(reduction) or reduction <= 0):
        raise ValueError(f"reduction must be a finite number > 0, got {reduction!r}")
    return reduction


def reduced_channels(channels: int, reduction: float = 16, rd_divisor: int = 8) -> int:
    """Width of the SE bottleneck for ``channels`` inputs.

    Args:
        channels: Number of input channels ``C`` (>= 1).
        reduction: Reduction ratio ``r`` (finite, > 0); the bottleneck is ``C / r``.
        rd_divisor: Round ``C / r`` to the nearest multiple of this (>= 1), as
            timm's ``SEModule`` does with 8. With 1 the width is ``round(C / r)``;
            implementations that floor (``C // r``) are matched with an explicit
            ``rd_channels`` instead.

    Returns:
        The reduced width: a multiple of ``rd_divisor`` and never below it, so
        never below 1.

    Raises:
        ValueError: if an argument is out of range.
    """
    _check_positive_int("channels", channels)
    _check_positive_int("rd_divisor", rd_divisor)
    _check_reduction(reduction)
    return make_divisible(channels / reduction, rd_divisor, round_limit=0.0)


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation: channel attention from globally pooled features.

    Args:
        channels: Number of input (and output) channels.
        reduction: Reduction ratio ``r`` of the bottleneck (default 16, as in
            the paper). Unused (still validated) when ``rd_channels`` is given.
        rd_channels: Explicit bottleneck width; overrides ``reduction``.
        rd_divisor: Round the bottleneck width computed from ``reduction`` to a
            multiple of this (default 8, as timm's ``SEModule``).
        bias: Whether ``fc1`` / ``fc2`` have biases.
        act_layer: Activation between the FCs (``delta`` in eq. 3, ReLU).
        gate_layer: Gate after ``fc2`` (``sigma`` in eq. 3, sigmoid); a timm
            activation name or a module class.
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        ValueError: if ``channels``, ``reduction``, ``rd_channels`` or
            ``rd_divisor`` is out of range.

    Example:
        >>> se = SqueezeExcite(64)
        >>> se(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(
            self,
            channels: int,
            reduction: float = 16,
            rd_channels: Optional[int] = None,
            rd_divisor: int = 8,
            bias: bool = True,
            act_layer: Union[str, Type[nn.Module]] = nn.ReLU,
            gate_layer: Union[str, Type[nn.Module]] = "sigmoid",
            device: Optional[Union[str, torch.device]] = None,
            dtype: Optional[torch.dtype] = None,
    ):
        super().__init__()
        rd_width = reduced_channels(channels, reduction, rd_divisor)  # validates all three
        rd_channels = rd_width if rd_channels is None else _check_positive_int("rd_channels", rd_channels)
        self.channels = channels
        dd = {"device": device, "dtype": dtype}
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=bias, **dd)
        self.act = create_act_layer(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=bias, **dd)
        self.gate = create_act_layer(gate_layer)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"x must be 4-D (N, C, H, W), got shape {list(x.shape)}")
        if x.shape[1] != self.channels:
            raise ValueError(f"x must have {self.channels} channels in dim 1, got {x.shape[1]} "
                             f"(shape {list(x.shape)})")

    def excite(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze and excite: the per-channel gate ``s`` of eq. 3.

        Args:
            x: Input of shape ``(N, C, H, W)``.

        Returns:
            The gate, shape ``(N, C, 1, 1)``, in ``x``'s dtype.

        Raises:
            ValueError: if ``x`` is not 4-D or has the wrong channel count.
        """
        if not torch.jit.is_scripting():
            if not capturing_graph():
                self._check_input(x)
        return self.excite_mean(x.mean((2, 3)))

    def excite_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Excitation (eq. 3) of an already squeezed input.

        Args:
            z: The channel means ``z`` of eq. 2, shape ``(N, C)``.

        Returns:
            The gate, shape ``(N, C, 1, 1)``.
        """
        # The 1x1 convs run as matmuls on the pooled (N, C) vector: the same weights
        # and result, at a fraction of a convolution call's overhead on a 1x1 map.
        s = self.act(nn.functional.linear(z, self.fc1.weight.flatten(1), self.fc1.bias))
        s = self.gate(nn.functional.linear(s, self.fc2.weight.flatten(1), self.fc2.bias))
        return s.view(-1, self.channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` channel-wise by its SE gate.

        Args:
            x: Input of shape ``(N, C, H, W)``, any memory format.

        Returns:
            ``x * s``, same shape, dtype and memory format as ``x``.

        Raises:
            ValueError: if ``x`` is not 4-D or has the wrong channel count.
        """
        return x * self.excite(x)

    def scale_add(self, x: torch.Tensor, shortcut: torch.Tensor, s: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x * s + shortcut``: the SE scale fused with a residual add.

        Equals ``self(x) + shortcut``. Without autograd it overwrites ``x``
        (the block's own temporary) instead of allocating, so the scale and
        the add cost one pass over the feature map. TorchScript-compatible.

        Args:
            x: Residual branch output, shape ``(N, C, H, W)``; overwritten
               when no gradient is being recorded.
            shortcut: Tensor of ``x``'s shape, added after the scale; never modified.
            s: The gate, when the caller has computed it (see :meth:`excite_mean`);
               by default ``self.excite(x)``.

        Returns:
            The sum, same shape and memory format as ``x``.

        Raises:
            ValueError: if ``x`` is not 4-D, has the wrong channel count, or
                ``shortcut`` does not have ``x``'s shape.
        """
        if not torch.jit.is_scripting():
            if capturing_graph():  # symbolic shapes: no checks, no write into a graph value
                return torch.addcmul(shortcut, x, self.excite(x) if s is None else s)
            if shortcut.shape != x.shape:
                raise ValueError(f"shortcut must have the shape of x, {list(x.shape)}, got {list(shortcut.shape)}")
        if s is None:
            s = self.excite(x)
        if torch.is_grad_enabled() and (x.requires_grad or s.requires_grad or shortcut.requires_grad):
            return torch.addcmul(shortcut, x, s)
        # one pass over x (multiply-add, written back into x) instead of mul_ then add_
        return torch.addcmul(shortcut, x, s, out=x)

    def residual(
            self,
            x: torch.Tensor,
            shortcut: torch.Tensor,
            z: Optional[torch.Tensor] = None,
            drop_prob: Optional[float] = None,
    ) -> torch.Tensor:
        """The SE epilogue of a residual block: ``drop_path(x * s) + shortcut``.

        Without stochastic depth (``drop_prob`` None) this is the fused
        :meth:`scale_add`; with it, the scaled branch goes through timm's
        ``drop_path`` (active in training mode only) before the add, exactly as
        a block calling ``DropPath(drop_prob)`` on ``self(x)`` computes.

        Args:
            x: Residual branch output, shape ``(N, C, H, W)``; overwritten by the
               fused path when no gradient is being recorded.
            shortcut: Tensor of ``x``'s shape; never modified.
            z: ``x``'s channel means when the block computed them more cheaply
               (see :meth:`excite_mean`); by default taken from ``x``.
            drop_prob: The block's stochastic-depth rate, None when it has none.

        Returns:
            The sum, before the block's final activation.

        Raises:
            ValueError: if ``x`` is not 4-D, has the wrong channel count, or
                ``shortcut`` does not have ``x``'s shape.
        """
        if drop_prob is not None:
            return drop_path(self.forward(x), drop_prob, self.training) + shortcut
        return self.scale_add(x, shortcut, None if z is None else self.excite_mean(z))

    def scale_add_act(self, x: torch.Tensor, shortcut: torch.Tensor, act: nn.Module) -> torch.Tensor:
        """``act(x * s + shortcut)``: :meth:`scale_add` followed by an activation.

        Equals ``act(self(x) + shortcut)``; with an in-place ``act`` and no
        autograd, no new tensor is allocated. TorchScript cannot pass a module
        as an argument, so scripted code calls ``act(se.scale_add(x, shortcut))``.

        Args:
            x: Residual branch output, shape ``(N, C, H, W)``; overwritten
               when no gradient is being recorded.
            shortcut: Tensor of ``x``'s shape, added after the scale; never modified.
            act: Activation module applied to the sum (``nn.ReLU`` in ResNets).

        Returns:
            The activated sum, same shape and memory format as ``x``.

        Raises:
            ValueError: if ``x`` is not 4-D, has the wrong channel count, or
                ``shortcut`` does not have ``x``'s shape.
        """
        return act(self.scale_add(x, shortcut))
