"""SE state-dict layouts (tests/helpers/layouts.py): round trips, prefixes and errors for every layout."""
import re

import pytest
import torch

from se_zoo import SqueezeExcite
from helpers.layouts import LAYOUTS, LayoutError, from_layout, to_layout

C, R = 40, 3
# Each layout's keys and shapes as its own implementation stores them.
FOREIGN = {
    "seed": {"l1.weight": (R, C), "l2.weight": (C, R)},
    "timm": {"fc1.weight": (R, C, 1, 1), "fc1.bias": (R,), "fc2.weight": (C, R, 1, 1), "fc2.bias": (C,)},
    "torchvision": {"fc1.weight": (R, C, 1, 1), "fc1.bias": (R,), "fc2.weight": (C, R, 1, 1), "fc2.bias": (C,)},
    "caffe": {"fc1.weight": (R, C, 1, 1), "fc1.bias": (R,), "fc2.weight": (C, R, 1, 1), "fc2.bias": (C,)},
    "senet_pytorch": {"fc.0.weight": (R, C), "fc.2.weight": (C, R)},
}
HAS_BIAS = {"seed": False, "timm": True, "torchvision": True, "caffe": True, "senet_pytorch": False}


def _foreign(layout, prefix=""):
    return {prefix + k: torch.randn(shape) for k, shape in FOREIGN[layout].items()}


def _native(bias, prefix=""):
    se = SqueezeExcite(C, rd_channels=R, bias=bias)
    return {prefix + k: torch.randn_like(v) for k, v in se.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_layouts():
    assert set(LAYOUTS) == set(FOREIGN)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_foreign_round_trip(layout):
    foreign = _foreign(layout)
    native = from_layout(foreign, layout)
    SqueezeExcite(C, rd_channels=R, bias=HAS_BIAS[layout]).load_state_dict(native, strict=True)
    _assert_same(to_layout(native, layout), foreign)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_native_round_trip(layout):
    native = _native(bias=HAS_BIAS[layout])
    foreign = to_layout(native, layout)
    assert {k: tuple(v.shape) for k, v in foreign.items()} == FOREIGN[layout]
    _assert_same(from_layout(foreign, layout), native)


def test_timm_layout_without_bias_round_trips():
    native = _native(bias=False)
    _assert_same(to_layout(native, "timm"), native)
    _assert_same(from_layout(native, "timm"), native)


@pytest.mark.parametrize("layout", ["torchvision", "caffe"])
def test_bias_free_module_gets_exact_zero_biases_where_biases_are_mandatory(layout):
    se = SqueezeExcite(C, rd_channels=R, bias=False)
    foreign = to_layout(se.state_dict(), layout)
    assert list(foreign) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert not foreign["fc1.bias"].any() and not foreign["fc2.bias"].any()
    biased = SqueezeExcite(C, rd_channels=R, bias=True)
    biased.load_state_dict(from_layout(foreign, layout), strict=True)
    x = torch.randn(2, C, 3, 3)
    torch.testing.assert_close(biased(x), se(x), rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["seed", "senet_pytorch"])
def test_zero_bias_is_dropped_for_bias_free_layouts(layout):
    native = _native(bias=True)
    native["fc1.bias"].zero_()
    native["fc2.bias"].zero_()
    foreign = to_layout(native, layout)
    assert list(foreign) == list(FOREIGN[layout])


@pytest.mark.parametrize("layout", ["seed", "senet_pytorch"])
@pytest.mark.parametrize("bias_key", ["fc1.bias", "fc2.bias"])
def test_non_zero_bias_into_bias_free_layout_raises(layout, bias_key):
    native = _native(bias=True)
    other = "fc2.bias" if bias_key == "fc1.bias" else "fc1.bias"
    native[other].zero_()
    native[bias_key].zero_()[0] = 0.25
    with pytest.raises(LayoutError, match=rf"layout {layout!r} has no bias, but {bias_key!r} is non-zero "
                                          rf"\(max \|b\| = 0\.25\)"):
        to_layout(native, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_prefix_converts_only_that_module(layout):
    prefix = "layer1.0.se."
    other_se = _foreign(layout, "layer1.1.se.")
    state = {"conv1.weight": torch.randn(4, 3, 3, 3), **_foreign(layout, prefix), **other_se,
             "fc.bias": torch.randn(10)}
    native = from_layout(state, layout, prefix=prefix)
    se_keys = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"] if HAS_BIAS[layout] else ["fc1.weight", "fc2.weight"]
    assert list(native) == ["conv1.weight", *[prefix + k for k in se_keys], *other_se, "fc.bias"]
    for key in ["conv1.weight", "fc.bias", *other_se]:
        assert native[key] is state[key]
    module = torch.nn.Module()
    module.se = SqueezeExcite(C, rd_channels=R, bias=HAS_BIAS[layout])
    module.se.load_state_dict({k[len(prefix):]: v for k, v in native.items() if k.startswith(prefix)}, strict=True)
    _assert_same(to_layout(native, layout, prefix=prefix), state)


def test_inputs_are_not_modified():
    foreign = _foreign("seed")
    before = {k: v.clone() for k, v in foreign.items()}
    from_layout(foreign, "seed")
    _assert_same(foreign, before)
    native = _native(bias=True)
    before = {k: v.clone() for k, v in native.items()}
    to_layout(native, "torchvision")
    _assert_same(native, before)


@pytest.mark.parametrize("fn", [from_layout, to_layout])
@pytest.mark.parametrize("layout", ["timmm", "", "SEED", None])
def test_unknown_layout_lists_valid_ones(fn, layout):
    with pytest.raises(LayoutError) as info:
        fn(_native(bias=True), layout)
    message = str(info.value)
    assert repr(layout) in message
    assert all(repr(name) in message for name in LAYOUTS)


def test_layout_error_is_value_error():
    assert issubclass(LayoutError, ValueError)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_missing_key(layout):
    foreign = _foreign(layout)
    key = list(foreign)[-1]
    del foreign[key]
    with pytest.raises(LayoutError, match=rf"state_dict has no key {re.escape(repr(key))} required by layout {layout!r}"):
        from_layout(foreign, layout)


def test_missing_key_with_prefix_names_the_full_key():
    with pytest.raises(LayoutError, match=re.escape("no key 'blocks.2.se.l1.weight' required by layout 'seed'")):
        from_layout(_foreign("seed", "blocks.1.se."), "seed", prefix="blocks.2.se.")
    with pytest.raises(LayoutError, match=re.escape("no key 'se.fc1.weight' required by layout 'se_zoo'")):
        to_layout(_native(bias=True), "seed", prefix="se.")


@pytest.mark.parametrize("layout", ["torchvision", "caffe"])
def test_mandatory_bias_missing(layout):
    foreign = _foreign(layout)
    del foreign["fc1.bias"], foreign["fc2.bias"]
    with pytest.raises(LayoutError, match=rf"no key 'fc1.bias' required by layout {layout!r}"):
        from_layout(foreign, layout)


def test_half_a_bias_pair_is_an_error():
    foreign = _foreign("timm")
    del foreign["fc2.bias"]
    with pytest.raises(LayoutError, match="no key 'fc2.bias' required by layout 'timm'"):
        from_layout(foreign, "timm")
    native = _native(bias=True)
    del native["fc1.bias"]
    with pytest.raises(LayoutError, match="no key 'fc1.bias' required by layout 'se_zoo'"):
        to_layout(native, "timm")


@pytest.mark.parametrize("layout,key,shape,message", [
    ("seed", "l1.weight", (R, C, 1, 1), "'l1.weight' in layout 'seed' must be a 2-D Linear weight, got shape [3, 40, 1, 1]"),
    ("senet_pytorch", "fc.2.weight", (C,), "'fc.2.weight' in layout 'senet_pytorch' must be a 2-D Linear weight, got shape [40]"),
    ("timm", "fc1.weight", (R, C), "'fc1.weight' in layout 'timm' must be a 1x1 conv weight (out, in, 1, 1), got shape [3, 40]"),
    ("torchvision", "fc2.weight", (C, R, 3, 3), "'fc2.weight' in layout 'torchvision' must be a 1x1 conv weight (out, in, 1, 1), got shape [40, 3, 3, 3]"),
    ("caffe", "fc2.weight", (C, R + 1, 1, 1), "'fc2.weight' must have shape [40, 3, ...] to undo 'fc1.weight' of shape [3, 40, 1, 1], got [40, 4, 1, 1]"),
    ("seed", "l2.weight", (R, C), "'l2.weight' must have shape [40, 3, ...] to undo 'l1.weight' of shape [3, 40], got [3, 40]"),
    ("caffe", "fc1.bias", (C,), "'fc1.bias' in layout 'caffe' must have shape [3], got [40]"),
    ("timm", "fc2.bias", (C, 1), "'fc2.bias' in layout 'timm' must have shape [40], got [40, 1]"),
])
def test_wrong_shapes_from_layout(layout, key, shape, message):
    foreign = _foreign(layout)
    foreign[key] = torch.randn(shape)
    with pytest.raises(LayoutError, match=re.escape(message)):
        from_layout(foreign, layout)


@pytest.mark.parametrize("key,shape,message", [
    ("fc1.weight", (R, C), "'fc1.weight' in layout 'se_zoo' must be a 1x1 conv weight (out, in, 1, 1), got shape [3, 40]"),
    ("fc2.weight", (C, R, 1, 3), "'fc2.weight' in layout 'se_zoo' must be a 1x1 conv weight (out, in, 1, 1), got shape [40, 3, 1, 3]"),
    ("fc2.weight", (C, R + 2, 1, 1), "'fc2.weight' must have shape [40, 3, ...] to undo 'fc1.weight' of shape [3, 40, 1, 1], got [40, 5, 1, 1]"),
])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_wrong_shapes_to_layout(layout, key, shape, message):
    native = _native(bias=False)
    native[key] = torch.randn(shape)
    with pytest.raises(LayoutError, match=re.escape(message)):
        to_layout(native, layout)
