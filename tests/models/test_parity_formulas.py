"""se-zoo against the paper's equations, written out with torch primitives.

eq. 2 (squeeze):    z_c = 1 / (H W) * sum_i sum_j u_c(i, j)
eq. 3 (excitation): s = sigma(W2 delta(W1 z)),  W1: C/r x C,  W2: C x C/r
scale:              x~_c = s_c * u_c
"""
import pytest
import torch

from _se_parity import assert_close
from se_zoo import SqueezeExcite

SHAPES = [(1, 40, 16, 7, 7), (2, 40, 16, 3, 5), (3, 64, 16, 5, 4), (2, 24, 4, 1, 1), (8, 8, 16, 4, 4)]


def squeeze(u):  # eq. 2, as an explicit sum over the H x W grid
    n, c, h, w = u.shape
    return u.reshape(n, c, h * w).sum(-1) / (h * w)


def excite(z, w1, b1, w2, b2):  # eq. 3 on a batch of row vectors z: (N, C)
    a = z @ w1.T + b1
    a = torch.where(a > 0, a, torch.zeros_like(a))  # delta = ReLU
    a = a @ w2.T + b2
    return 1 / (1 + torch.exp(-a))  # sigma = logistic sigmoid


def se_by_hand(u, w1, b1, w2, b2):
    s = excite(squeeze(u), w1, b1, w2, b2)
    return u * s[:, :, None, None], s


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"n{n}-c{c}-r{r}-{h}x{w}" for n, c, r, h, w in SHAPES])
def test_equations(shape, bias):
    n, c, r, h, w = shape
    se = SqueezeExcite(c, reduction=r, rd_divisor=1, bias=bias)
    rd = max(1, int(c / r + 0.5))  # C/r rounded half up, never below 1
    assert se.fc1.weight.shape == (rd, c, 1, 1) and se.fc2.weight.shape == (c, rd, 1, 1)
    with torch.no_grad():
        for name, p in se.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if name.endswith("weight") else 0.1))

    # the hand-written path sees the weights as plain matrices: W1 (C/r x C), W2 (C x C/r)
    w1 = se.fc1.weight.detach().reshape(rd, c).clone().requires_grad_()
    w2 = se.fc2.weight.detach().reshape(c, rd).clone().requires_grad_()
    b1 = (se.fc1.bias.detach() if bias else torch.zeros(rd)).clone().requires_grad_()
    b2 = (se.fc2.bias.detach() if bias else torch.zeros(c)).clone().requires_grad_()

    u = torch.randn(n, c, h, w) + torch.randn(n, c, 1, 1)  # pooled features vary by sample and channel
    u_hand, u_ours = u.clone().requires_grad_(), u.clone().requires_grad_()
    y_hand, s_hand = se_by_hand(u_hand, w1, b1, w2, b2)
    y_ours = se(u_ours)

    pre_act = squeeze(u) @ w1.T + b1
    assert (pre_act > 0).any() and (pre_act < 0).any(), "the ReLU must pass some values and cut others"
    assert_close(squeeze(u), u.mean((2, 3)), "eq. 2")  # the squeeze is a plain mean
    assert_close(se.excite(u).reshape(n, c), s_hand, "gate s (eq. 3)")
    assert_close(y_ours, y_hand, "output (scale)")

    upstream = torch.randn(n, c, h, w)
    hand_inputs = [u_hand, w1, w2] + ([b1, b2] if bias else [])
    our_inputs = [u_ours, se.fc1.weight, se.fc2.weight] + ([se.fc1.bias, se.fc2.bias] if bias else [])
    names = ["input", "W1", "W2", "b1", "b2"]
    grads_hand = torch.autograd.grad(y_hand, hand_inputs, upstream)
    grads_ours = torch.autograd.grad(y_ours, our_inputs, upstream)
    for name, g_ours, g_hand in zip(names, grads_ours, grads_hand):
        assert_close(g_ours.reshape(g_hand.shape), g_hand, f"gradient of {name}")
