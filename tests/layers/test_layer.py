"""SqueezeExcite: shapes, dtypes, memory formats, autograd, scripting, compile, ONNX, validation."""
import inspect
import re

import onnxruntime as ort
import pytest
import torch
from torch import nn
from timm.layers import SEModule

from se_zoo import SqueezeExcite
from se_zoo.layers import reduced_channels


def _random_se(*args, **kwargs) -> SqueezeExcite:
    se = SqueezeExcite(*args, **kwargs)
    with torch.no_grad():
        for p in se.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return se


def _input(*shape, dtype=torch.float32) -> torch.Tensor:
    # a per-channel offset makes the pooled features differ between channels
    return (torch.randn(*shape) + torch.randn(1, shape[1], 1, 1)).to(dtype)


@pytest.mark.parametrize("shape", [(0, 32, 4, 4), (1, 32, 1, 1), (2, 32, 3, 7), (3, 32, 9, 2)])
def test_shapes(shape):
    se = _random_se(32)
    x = _input(*shape).requires_grad_()
    y = se(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape and se.fc1.weight.grad is not None


def test_batch_zero_matches_nothing_and_h_w_one_is_a_gate():
    se = _random_se(16)
    assert se(torch.randn(0, 16, 5, 5)).numel() == 0
    x = _input(2, 16, 1, 1)
    # with H = W = 1 the squeeze is the identity: the output is x * gate(x)
    gate = torch.sigmoid(se.fc2(torch.relu(se.fc1(x))))
    torch.testing.assert_close(se(x), x * gate)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 3e-2), (torch.float16, 3e-3)])
def test_dtypes(dtype, tol):
    se = _random_se(24)
    x = _input(2, 24, 5, 6)
    expected = se(x)
    se_cast = se.to(dtype)
    y = se_cast(x.to(dtype))
    assert y.dtype == dtype and se_cast.excite(x.to(dtype)).dtype == dtype
    torch.testing.assert_close(y.float(), expected, rtol=tol, atol=tol * expected.abs().max().item())


def test_channels_last_stays_channels_last():
    se = _random_se(16)
    x = _input(2, 16, 5, 7)
    x_cl = x.to(memory_format=torch.channels_last)
    y = se(x_cl)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, se(x))
    shortcut = _input(2, 16, 5, 7)
    expected = torch.relu(se(x) + shortcut)
    with torch.no_grad():
        for sc in (shortcut.to(memory_format=torch.channels_last), shortcut):  # same or mixed layouts
            fused = se.scale_add_act(x_cl.clone(), sc, nn.ReLU(inplace=True))
            assert fused.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(fused, expected)
    fused = se.scale_add_act(x_cl.clone().requires_grad_(), x_cl, nn.ReLU())
    assert fused.is_contiguous(memory_format=torch.channels_last)


def test_gradcheck_float64():
    se = SqueezeExcite(6, rd_channels=3).double()
    names = [n for n, _ in se.named_parameters()]
    params = [torch.randn_like(p).mul_(0.5).requires_grad_() for p in se.parameters()]
    x = torch.randn(2, 6, 3, 2, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(se, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torchscript():
    se = _random_se(16).eval()
    scripted = torch.jit.script(se)
    for shape in [(2, 16, 4, 5), (1, 16, 1, 1)]:
        x = _input(*shape)
        torch.testing.assert_close(scripted(x), se(x))

    class Block(nn.Module):  # how SE blocks call the fused path
        def __init__(self):
            super().__init__()
            self.se = se
            self.act = nn.ReLU(inplace=True)

        def forward(self, x: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
            return self.act(self.se.scale_add(x, shortcut))

    x, shortcut = _input(2, 16, 4, 4), _input(2, 16, 4, 4)
    expected = torch.relu(se(x) + shortcut)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(Block())(x.clone(), shortcut), expected)


def _compile_roundtrip(backend: str):
    torch._dynamo.reset()
    se = _random_se(16)
    compiled = torch.compile(se, fullgraph=True, backend=backend)
    x = _input(2, 16, 5, 3).requires_grad_()
    g = torch.randn(2, 16, 5, 3)
    y = compiled(x)
    torch.testing.assert_close(y, se(x))
    (grad_c, w_c) = torch.autograd.grad(y, (x, se.fc1.weight), g)
    (grad_e, w_e) = torch.autograd.grad(se(x), (x, se.fc1.weight), g)
    torch.testing.assert_close(grad_c, grad_e)
    torch.testing.assert_close(w_c, w_e)
    x_other = _input(3, 16, 2, 7)  # another shape: recompiled or dynamic, never a graph break
    torch.testing.assert_close(compiled(x_other), se(x_other))

    fused = torch.compile(se.scale_add_act, fullgraph=True, backend=backend)
    shortcut = _input(2, 16, 5, 3)
    expected = torch.relu(se(x) + shortcut)
    torch.testing.assert_close(fused(x, shortcut, nn.ReLU()), expected)
    with torch.no_grad():
        torch.testing.assert_close(fused(x.detach().clone(), shortcut, nn.ReLU(inplace=True)), expected)


def test_torch_compile_fullgraph():
    _compile_roundtrip("aot_eager")


@pytest.mark.slow
def test_torch_compile_fullgraph_inductor():
    _compile_roundtrip("inductor")


_ONNX_EXPORT_ARGS = inspect.signature(torch.onnx.export).parameters


@pytest.mark.skipif("external_data" not in _ONNX_EXPORT_ARGS or "dynamic_shapes" not in _ONNX_EXPORT_ARGS,
                    reason=f"torch {torch.__version__}: torch.onnx.export has no external_data/dynamic_shapes "
                           f"(the dynamo exporter's arguments come with newer torch)")
def test_onnx_export_matches_onnxruntime(tmp_path):
    se = _random_se(24).eval()
    path = tmp_path / "se.onnx"
    torch.onnx.export(se, (_input(2, 24, 5, 5),), path, dynamo=True, external_data=False,
                      input_names=["x"], dynamic_shapes=({0: "batch", 2: "height", 3: "width"},))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(2, 24, 5, 5), (1, 24, 7, 3), (3, 24, 1, 1)]:
        x = _input(*shape)
        (y,) = session.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(y), se(x).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 8, 15])
def test_fewer_channels_than_reduction(channels):
    for rd_divisor in (1, 8):
        se = _random_se(channels, reduction=16, rd_divisor=rd_divisor)
        assert se.fc1.out_channels >= 1 and se.fc1.out_channels % rd_divisor == 0
        x = _input(2, channels, 4, 4)
        assert se(x).shape == x.shape


def test_reduced_channels_values():
    assert reduced_channels(64) == 8
    assert reduced_channels(256) == 16
    assert reduced_channels(2048) == 128
    assert reduced_channels(8) == 8  # never an empty bottleneck
    assert reduced_channels(8, rd_divisor=1) == 1
    assert reduced_channels(40, 16, rd_divisor=1) == 3  # round(2.5) up, as timm
    assert reduced_channels(64, 4, rd_divisor=1) == 16
    assert reduced_channels(100, 16, rd_divisor=4) == 8
    assert reduced_channels(64, 0.5, rd_divisor=1) == 128
    assert SqueezeExcite(64, rd_channels=5).fc1.out_channels == 5


@pytest.mark.parametrize("channels", [1, 8, 24, 40, 64, 96, 200, 256, 1024])
@pytest.mark.parametrize("reduction,rd_divisor", [(16, 8), (16, 1), (4, 8), (4, 1), (8, 4)])
def test_reduced_channels_matches_timm_semodule(channels, reduction, rd_divisor):
    timm_se = SEModule(channels, rd_ratio=1.0 / reduction, rd_divisor=rd_divisor)
    ours = SqueezeExcite(channels, reduction=reduction, rd_divisor=rd_divisor)
    assert ours.fc1.weight.shape == timm_se.fc1.weight.shape
    assert ours.fc2.weight.shape == timm_se.fc2.weight.shape
    ours.load_state_dict(timm_se.state_dict(), strict=True)


@pytest.mark.parametrize("kwargs,name,value", [
    ({"channels": 0}, "channels", 0),
    ({"channels": -4}, "channels", -4),
    ({"channels": 2.5}, "channels", 2.5),
    ({"channels": True}, "channels", True),
    ({"channels": 16, "reduction": 0}, "reduction", 0),
    ({"channels": 16, "reduction": -2.0}, "reduction", -2.0),
    ({"channels": 16, "reduction": float("nan")}, "reduction", float("nan")),
    ({"channels": 16, "reduction": "16"}, "reduction", "16"),
    ({"channels": 16, "rd_channels": 0}, "rd_channels", 0),
    ({"channels": 16, "rd_channels": -1}, "rd_channels", -1),
    ({"channels": 16, "rd_channels": 2.0}, "rd_channels", 2.0),
    ({"channels": 16, "rd_divisor": 0}, "rd_divisor", 0),
    ({"channels": 16, "rd_divisor": -8}, "rd_divisor", -8),
    ({"channels": 16, "rd_channels": 4, "reduction": 0}, "reduction", 0),
])
def test_bad_arguments(kwargs, name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be .*got {re.escape(repr(value))}$"):
        SqueezeExcite(**kwargs)
    if "rd_channels" not in kwargs:
        with pytest.raises(ValueError, match=rf"^{name} must be .*got {re.escape(repr(value))}$"):
            reduced_channels(**kwargs)


@pytest.mark.parametrize("shape,message", [
    ((16, 4, 4), r"x must be 4-D (N, C, H, W), got shape [16, 4, 4]"),
    ((1, 2, 16, 4, 4), r"x must be 4-D (N, C, H, W), got shape [1, 2, 16, 4, 4]"),
    ((2, 15, 4, 4), r"x must have 16 channels in dim 1, got 15 (shape [2, 15, 4, 4])"),
])
def test_bad_input(shape, message):
    se = SqueezeExcite(16)
    x = torch.randn(*shape)
    calls = (se, se.excite, lambda x: se.scale_add(x, x.clone()), lambda x: se.scale_add_act(x, x.clone(), nn.ReLU()))
    for call in calls:
        with pytest.raises(ValueError, match=re.escape(message)):
            call(x)


def test_scale_add_act_rejects_shortcut_of_other_shape():
    se = SqueezeExcite(16)
    message = re.escape("shortcut must have the shape of x, [2, 16, 4, 4], got [2, 16, 1, 1]")
    with pytest.raises(ValueError, match=message):
        se.scale_add(torch.randn(2, 16, 4, 4), torch.randn(2, 16, 1, 1))
    with pytest.raises(ValueError, match=message):
        se.scale_add_act(torch.randn(2, 16, 4, 4), torch.randn(2, 16, 1, 1), nn.ReLU())


def _fused(se: SqueezeExcite, x: torch.Tensor, shortcut: torch.Tensor, act: nn.Module, method: str):
    if method == "scale_add":
        return act(se.scale_add(x, shortcut))
    return se.scale_add_act(x, shortcut, act)


FUSED = ["scale_add", "scale_add_act"]


@pytest.mark.parametrize("method", FUSED)
@pytest.mark.parametrize("act", [nn.ReLU(inplace=True), nn.SiLU(), nn.Identity()])
def test_scale_add_act_no_grad_is_in_place_and_exact(act, method):
    se = _random_se(16)
    x, shortcut = _input(2, 16, 5, 4), _input(2, 16, 5, 4)
    shortcut_before = shortcut.clone()
    expected = act(se(x.clone()) + shortcut.clone()).detach()
    with torch.no_grad():
        x_in = x.clone()
        out = _fused(se, x_in, shortcut, act, method)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    if getattr(act, "inplace", True):
        assert out.data_ptr() == x_in.data_ptr()  # no allocation on the in-place path
    assert torch.equal(shortcut, shortcut_before)


@pytest.mark.parametrize("method", FUSED)
def test_scale_add_act_frozen_params_grad_mode_is_exact(method):
    se = _random_se(16).requires_grad_(False)
    x, shortcut = _input(2, 16, 3, 3), _input(2, 16, 3, 3)
    shortcut_before = shortcut.clone()
    expected = torch.relu(se(x) + shortcut)
    torch.testing.assert_close(_fused(se, x.clone(), shortcut, nn.ReLU(inplace=True), method), expected)
    assert torch.equal(shortcut, shortcut_before)


@pytest.mark.parametrize("method", FUSED)
@pytest.mark.parametrize("act_cls", [nn.ReLU, nn.SiLU])
def test_scale_add_act_autograd(act_cls, method):
    se = _random_se(16)
    x = _input(2, 16, 5, 4).requires_grad_()
    shortcut = _input(2, 16, 5, 4).requires_grad_()
    x_before, shortcut_before = x.detach().clone(), shortcut.detach().clone()
    g = torch.randn(2, 16, 5, 4)
    inputs = (x, shortcut, *se.parameters())

    expected = act_cls()(se(x) + shortcut)
    expected_grads = torch.autograd.grad(expected, inputs, g)
    out = _fused(se, x, shortcut, act_cls(inplace=True), method)
    grads = torch.autograd.grad(out, inputs, g)

    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert torch.equal(shortcut.detach(), shortcut_before)
    assert torch.equal(x.detach(), x_before)  # only the no-grad path may overwrite x


def test_forward_prints_nothing(capsys):
    se = _random_se(16)
    x = _input(2, 16, 4, 4)
    se(x)
    se.excite(x)
    se.scale_add_act(x.clone().requires_grad_(), x, nn.ReLU())
    with torch.no_grad():
        se.scale_add_act(x.clone(), x, nn.ReLU())
        se.scale_add(x.clone(), x)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_parameter_names_match_timm():
    assert [n for n, _ in SqueezeExcite(64).named_parameters()] == \
        [n for n, _ in SEModule(64).named_parameters()]
    assert [n for n, _ in SqueezeExcite(64, bias=False).named_parameters()] == ["fc1.weight", "fc2.weight"]


def test_act_and_gate_layers_are_configurable():
    se = _random_se(16, act_layer="silu", gate_layer="hard_sigmoid")
    x = _input(2, 16, 3, 3)
    z = x.mean((2, 3), keepdim=True)
    gate = nn.functional.hardsigmoid(se.fc2(nn.functional.silu(se.fc1(z))))
    torch.testing.assert_close(se(x), x * gate)
