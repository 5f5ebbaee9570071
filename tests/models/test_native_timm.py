"""se-zoo models behave as timm's own: torch.fx, ONNX export, pickling, pretrained cfgs.

timm's own model test suite runs in tests/models/test_timm_suite.py; these are the
checks it does not make (exact FX outputs, torchvision's feature extractor,
warning-free ONNX export, pickling, cfg equality with the timm twin).
"""
import copy
import io
import pickle
import warnings

import onnxruntime as ort
import pytest
import timm
import torch
from timm.models import get_pretrained_cfg
from torch.fx import symbolic_trace
from torchvision.models.feature_extraction import create_feature_extractor

from se_zoo import SqueezeExcite
from se_zoo.architectures import ARCHITECTURES, FAMILIES, PLAIN_EQUIVALENTS, TIMM_EQUIVALENTS, by_family
from se_zoo.models._pretrained import WEIGHTS_LOCATION_FIELDS

from helpers.weights import randomize_

ONE_PER_FAMILY = [by_family(family)[0].name for family in FAMILIES]
SMALL = [3, 96, 96]
# Fields that say how a model is fed and what it outputs; tagged cfgs must equal the twin's tag in these.
PREPROCESSING = ("input_size", "test_input_size", "min_input_size", "fixed_input_size", "interpolation",
                 "crop_pct", "test_crop_pct", "crop_mode", "mean", "std", "num_classes", "pool_size",
                 "test_pool_size", "first_conv", "classifier", "license")


def _model(name, **kwargs):
    return randomize_(timm.create_model(name, **kwargs)).eval()


def test_table_is_the_source_of_every_mapping():
    import se_zoo.bench
    import se_zoo.models

    assert len(ARCHITECTURES) == 23 and len({a.name for a in ARCHITECTURES}) == 23
    assert se_zoo.models.TIMM_EQUIVALENTS is TIMM_EQUIVALENTS
    assert se_zoo.bench.PLAIN_EQUIVALENTS is PLAIN_EQUIVALENTS
    assert sorted(timm.list_models("se_zoo_*")) == sorted(TIMM_EQUIVALENTS)
    for arch in ARCHITECTURES:
        assert arch.family in FAMILIES and timm.is_model(arch.timm_twin)
        entrypoint = timm.models.model_entrypoint(arch.name)  # an explicit function of its family's module
        assert entrypoint.__name__ == arch.name and entrypoint.__module__.startswith("se_zoo.models.se_")
        assert entrypoint.__doc__ and "\n" not in entrypoint.__doc__.strip()
        assert arch.plain_twin is None or timm.is_model(arch.plain_twin)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="families must be among .* got \\['nope'\\]"):
        by_family("nope")


@pytest.mark.parametrize("arch", [a.name for a in ARCHITECTURES])
def test_pretrained_cfgs_equal_the_timm_twin(arch):
    twin = TIMM_EQUIVALENTS[arch]
    for name in timm.list_models(arch, include_tags=True):
        tag = name.split(".", 1)[1]
        ours = get_pretrained_cfg(name).to_dict()
        if tag == "untrained":  # all fields but the weights location
            theirs = get_pretrained_cfg(twin).to_dict()
            fields = (set(ours) | set(theirs)) - set(WEIGHTS_LOCATION_FIELDS) - {"architecture", "tag"}
            assert not get_pretrained_cfg(name).has_weights  # timm's tag for an architecture without weights
        else:  # a published checkpoint: preprocessing of the twin's same tag (seinit_* warm starts)
            theirs = get_pretrained_cfg(f"{twin}.{tag.removeprefix('seinit_')}").to_dict()
            fields = PREPROCESSING
        for field in sorted(fields):
            assert ours.get(field) == theirs.get(field), f"{name}.{field} differs from {twin}'s"


@pytest.mark.parametrize("arch", [  # 5-10 s each: one per family by default, all in -m slow
    pytest.param(a.name, marks=[] if a.name in ONE_PER_FAMILY else [pytest.mark.slow]) for a in ARCHITECTURES])
def test_pickle_torch_save_and_deepcopy(arch):
    big = any(depth in arch for depth in ("101", "152", "154"))  # structure only: built on the meta device
    model = timm.create_model(arch, device="meta" if big else "cpu").eval()
    for module in model.modules():  # every class is found under its own module-level name
        cls = type(module)
        assert getattr(__import__(cls.__module__, fromlist=["_"]), cls.__qualname__) is cls
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    clones = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model), torch.load(buffer, weights_only=False)]
    for clone in clones:
        assert [type(m) for m in clone.modules()] == [type(m) for m in model.modules()]
    if not big:
        x = torch.randn(1, *SMALL)
        with torch.no_grad():
            expected = model(x)
            for clone in clones:
                assert torch.equal(clone(x), expected)


@pytest.mark.parametrize("arch", ONE_PER_FAMILY)
@pytest.mark.parametrize("train", [False, True])
def test_fx_symbolic_trace_equals_eager(arch, train):
    model = _model(arch, drop_path_rate=0.1 if train else 0.).train(train)
    graph = symbolic_trace(model)  # traced in the mode it runs in: python branches on .training are frozen
    x = torch.randn(2, *SMALL)
    if train:  # the autograd path, BN batch statistics and stochastic depth
        torch.manual_seed(0)
        expected = model(x)
        torch.manual_seed(0)
        torch.testing.assert_close(graph(x), expected, rtol=0, atol=0)
        return
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(graph(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(torch.jit.script(graph)(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("arch", ONE_PER_FAMILY)
def test_timm_fx_features_equal_hook_features(arch):
    model = _model(arch)
    fx_features = timm.create_model(arch, features_only=True, feature_cls="fx").eval()
    hook_features = timm.create_model(arch, features_only=True, feature_cls="hook").eval()
    state = model.state_dict()
    for wrapper in (fx_features, hook_features):  # wrapper keys: a prefix + the model's keys
        wrapper.load_state_dict({k: state[k.split(".", 1)[1]] for k in wrapper.state_dict()})
    x = torch.randn(1, *SMALL)
    with torch.no_grad():
        for a, b in zip(fx_features(x), hook_features(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("arch", ["se_zoo_resnet50", "se_zoo_mobilenetv2_100"])
def test_torchvision_feature_extractor_equals_features_only(arch):
    model = _model(arch)
    nodes = model.feature_info.module_name() if hasattr(model.feature_info, "module_name") \
        else [info["module"] for info in model.feature_info]
    extractor = create_feature_extractor(model, return_nodes=nodes)
    features = timm.create_model(arch, features_only=True).eval()
    missing, unexpected = features.load_state_dict(model.state_dict(), strict=False)
    assert not missing
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        got = list(extractor(x).values())
        expected = features(x)
    assert len(got) == len(expected) == 5
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("arch", ONE_PER_FAMILY)
def test_onnx_export_without_tracer_warnings_matches_onnxruntime(arch, tmp_path):
    model = timm.create_model(arch).eval()
    with torch.no_grad():  # timm's init with BN statistics and affines of trained scale: logits of order 1
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0), module.bias.uniform_(-0.1, 0.1)
                module.running_mean.uniform_(-0.1, 0.1), module.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, *SMALL)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        inp = torch.randn(batch, *SMALL)
        (out,) = session.run(None, {"x": inp.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(out), model(inp), rtol=1e-5, atol=1e-5)


def test_eager_checks_still_raise_and_traced_graphs_skip_them():
    se = SqueezeExcite(16).eval()
    with pytest.raises(ValueError, match="16 channels"):
        se(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        se(torch.randn(16, 4, 4))
    with pytest.raises(ValueError, match="shortcut must have the shape of x"):
        se.scale_add(torch.randn(1, 16, 4, 4), torch.randn(1, 16, 2, 2))
    graph = symbolic_trace(se)
    assert not any(node.op == "call_function" and "raise" in str(node.target) for node in graph.graph.nodes)
    x = torch.randn(2, 16, 3, 5)
    with torch.no_grad():
        assert torch.equal(graph(x), se(x))
