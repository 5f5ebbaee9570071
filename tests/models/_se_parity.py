"""Shared check for the SE parity tests: se-zoo vs an independently built reference."""
from typing import Callable, Dict, Tuple

import torch
from torch import nn

from helpers.weights import randomize_
from se_zoo import SqueezeExcite
from helpers.layouts import from_layout, to_layout

# (N, C, r, H, W): batch 1 with C not divisible by r, non-square, H = W = 1, a wider layer
SHAPES = [(1, 40, 16, 7, 7), (2, 40, 16, 3, 5), (3, 64, 16, 5, 4), (2, 24, 4, 1, 1), (4, 96, 8, 6, 6)]
SHAPE_IDS = [f"n{n}-c{c}-r{r}-{h}x{w}" for n, c, r, h, w in SHAPES]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """fp32 closeness to 1e-6, relative to the tensor's scale when that exceeds 1.

    Weight gradients reach magnitudes of ~10 here, where 1e-6 absolute is below
    two ulps; Linear and 1×1-conv kernels accumulate in different orders.
    """
    atol = 1e-6 * max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=atol, msg=lambda m: f"{what}: {m}")


def check_parity(
        make_reference: Callable[[], nn.Module],
        layout: str,
        param_map: Dict[str, str],
        shape: Tuple[int, int, int, int],
        **se_kwargs,
) -> None:
    """Assert se-zoo equals the reference in output, input gradient and weight gradients.

    Args:
        make_reference: Builds a fresh reference module (any weights).
        layout: The reference's layout name in :mod:`helpers.layouts`.
        param_map: se-zoo parameter name -> the reference's parameter holding the
            same values, written out by each test from the reference's structure.
        shape: Input shape ``(N, C, H, W)``.
        **se_kwargs: Extra :class:`SqueezeExcite` arguments (bias, act/gate layers).
    """
    reference = randomize_(make_reference(), seed=sum(shape))
    ref_params = dict(reference.named_parameters())
    rd_channels = ref_params[param_map["fc1.weight"]].shape[0]
    ours = SqueezeExcite(shape[1], rd_channels=rd_channels, **se_kwargs)
    ours.load_state_dict(from_layout(reference.state_dict(), layout), strict=True)
    our_params = dict(ours.named_parameters())
    assert sorted(our_params) == sorted(param_map) and sorted(ref_params) == sorted(param_map.values())

    x = torch.randn(shape) + torch.randn(shape[0], shape[1], 1, 1)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_ours = reference(x_ref), ours(x_ours)
    assert_close(y_ours, y_ref, "output")

    names = list(param_map)
    upstream = torch.randn(shape)
    grads_ref = torch.autograd.grad(y_ref, [x_ref] + [ref_params[param_map[n]] for n in names], upstream)
    grads_ours = torch.autograd.grad(y_ours, [x_ours] + [our_params[n] for n in names], upstream)
    assert_close(grads_ours[0], grads_ref[0], "input gradient")
    for name, g_ours, g_ref in zip(names, grads_ours[1:], grads_ref[1:]):
        assert g_ours.numel() == g_ref.numel(), name
        assert_close(g_ours.reshape(g_ref.shape), g_ref, f"gradient of {name}")

    back = make_reference()
    back.load_state_dict(to_layout(ours.state_dict(), layout), strict=True)
    for key, value in reference.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
