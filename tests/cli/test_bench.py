"""``se-zoo bench``: candidates, bookkeeping of the interleaved run, outputs. No timing assertions."""
import importlib.util
import json
import statistics
from pathlib import Path

import pytest
import timm
import torch

import se_zoo
from se_zoo.bench import (
    PLAIN_EQUIVALENTS, BenchConfig, Candidate, bench_layer, bench_models, format_table, model_candidates)
from se_zoo.bench import candidates as bench_candidates
from se_zoo.bench import memory as bench_memory
from se_zoo.bench import timing as bench_timing
from se_zoo.cli import COMMANDS, main
from se_zoo.layers import SqueezeExcite

TINY = dict(batch_size=2, img_size=32, iters=1, warmup=1, repeats=3, memory=False)
TINY_ARGS = ["--batch-size", "2", "--img-size", "32", "--iters", "1", "--warmup", "1", "--repeats", "2",
             "--no-memory", "-q"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_script(name):
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_imports_script = _load_script("bench_imports")


def _paired(numerators, denominators):
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def test_bench_is_a_cli_command():
    assert ("bench", "se_zoo.cli.bench", "benchmark se-zoo against timm") in COMMANDS


def test_candidates_resnet():
    assert model_candidates("se_zoo_resnet50") == [
        Candidate("se_zoo_resnet50", "se-zoo", "se_zoo_resnet50"),
        Candidate("seresnet50", "timm", "seresnet50"),
        Candidate("resnet50", "plain", "resnet50"),
    ]


def test_candidates_mobilenet_use_timm_se_layer():
    # timm has MobileNet-V2 without SE only: the baseline is se-zoo's network with timm's SE layer
    assert model_candidates("se_zoo_mobilenetv2_100") == [
        Candidate("se_zoo_mobilenetv2_100", "se-zoo", "se_zoo_mobilenetv2_100"),
        Candidate("se_zoo_mobilenetv2_100 (timm SE)", "timm", "se_zoo_mobilenetv2_100", se="timm"),
        Candidate("mobilenetv2_100", "plain", "mobilenetv2_100"),
    ]


def test_candidates_legacy_plain_is_timm_model_without_se():
    assert model_candidates("se_zoo_legacy_seresnet50")[1:] == [
        Candidate("legacy_seresnet50", "timm", "legacy_seresnet50"),
        Candidate("legacy_seresnet50 without SE", "plain", "legacy_seresnet50", se="none"),
    ]


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="se-zoo architecture.*'resnet50'"):
        model_candidates("resnet50")


def _shapes(model, skip=()):
    return sorted(tuple(p.shape) for name, p in model.named_parameters() if not any(s in name for s in skip))


@pytest.mark.parametrize("name", sorted(PLAIN_EQUIVALENTS))
def test_plain_equivalent_is_the_model_without_se(name):
    with torch.device("meta"):
        model, plain = timm.create_model(name), timm.create_model(PLAIN_EQUIVALENTS[name])
    se_names = [n for n, m in model.named_modules() if isinstance(m, SqueezeExcite)]
    assert se_names
    assert _shapes(model, skip=[f"{n}." for n in se_names]) == _shapes(plain)


def test_replace_se_with_timm_layer_and_identity():
    from timm.models._efficientnet_blocks import SqueezeExcite as TimmSE

    cfg = BenchConfig(channels_last=False)
    ours = bench_candidates._build(Candidate("a", "se-zoo", "se_zoo_mobilenetv2_050"), cfg)
    theirs = bench_candidates._build(Candidate("b", "timm", "se_zoo_mobilenetv2_050", se="timm"), cfg)
    plain = bench_candidates._build(Candidate("c", "plain", "se_zoo_mobilenetv2_050", se="none"), cfg)
    n_se = sum(isinstance(m, SqueezeExcite) for m in ours.modules())
    assert n_se == sum(isinstance(m, TimmSE) for m in theirs.modules()) > 0
    assert not any(isinstance(m, SqueezeExcite) for m in theirs.modules())
    assert not any(isinstance(m, (SqueezeExcite, TimmSE)) for m in plain.modules())
    bench_candidates._randomize_norms(ours)
    bench_candidates._copy_weights(ours, theirs)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), ours(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="se must be"):
        bench_candidates._build(Candidate("d", "timm", "resnet18", se="other"), cfg)
    with pytest.raises(ValueError, match="no SE layer"):
        bench_candidates._build(Candidate("d", "timm", "resnet18", se="none"), cfg)


def _check_model_result(result, names):
    json.dumps(result)  # JSON-ready
    assert result["mode"] == "model" and [r["model"] for r in result["results"]] == names
    for r, name in zip(result["results"], names):
        cands = r["candidates"]
        assert [c["role"] for c in cands] == ["se-zoo", "timm", "plain"]
        assert [c["label"] for c in cands] == [c.label for c in model_candidates(name)]
        assert r["baseline"] == cands[1]["label"]
        samples = {c["role"]: c["samples_ms"] for c in cands}
        for c in cands:  # every ratio comes from the samples of the same rounds
            assert len(c["samples_ms"]) == result["config"]["repeats"]
            assert c["latency_ms"] == pytest.approx(statistics.median(c["samples_ms"]))
            assert c["images_per_s"] == pytest.approx(result["config"]["batch_size"] / c["latency_ms"] * 1e3)
            assert c["ratio"] == pytest.approx(_paired(samples["timm"], c["samples_ms"]))
        assert cands[1]["ratio"] == 1.0
        for role in ("se-zoo", "timm"):
            assert r["se_overhead"][role] == pytest.approx(_paired(samples[role], samples["plain"]) - 1)
        # same weights: se-zoo and its timm counterpart compute the same logits
        assert r["logits_max_rel_diff"] < 1e-5


def test_bench_models_resnet_and_mobilenet():
    result = bench_models(["se_zoo_resnet18", "se_zoo_mobilenetv2_050"], BenchConfig(**TINY))
    _check_model_result(result, ["se_zoo_resnet18", "se_zoo_mobilenetv2_050"])
    assert any("timm's EfficientNet SqueezeExcite" in n for n in result["results"][1]["notes"])
    table = format_table(result)
    for label in ("se_zoo_resnet18", "seresnet18", "resnet18", "se_zoo_mobilenetv2_050 (timm SE)", "mobilenetv2_050"):
        assert label in table


def test_bench_models_training_step_updates_weights():
    cfg = BenchConfig(**{**TINY, "train": True, "repeats": 1, "warmup": 0})
    model = bench_candidates._build(Candidate("a", "se-zoo", "se_zoo_resnet18"), cfg)
    x, target = bench_timing._inputs(cfg)
    before = model.fc.weight.detach().clone()
    bench_timing._make_step(model, cfg, x, target)()
    assert model.training and not torch.equal(model.fc.weight, before)
    _check_model_result(bench_models(["se_zoo_resnet18"], cfg), ["se_zoo_resnet18"])


@pytest.mark.skipif(not bench_memory._cpu_memory_supported(), reason="needs Linux with glibc")
@pytest.mark.slow  # ~17 s of measured training steps
def test_cpu_peak_memory_grows_with_batch():
    candidate = Candidate("resnet18", "plain", "resnet18")
    small = bench_memory._cpu_peak_memory(candidate, BenchConfig(batch_size=1, img_size=64, warmup=1))
    large = bench_memory._cpu_peak_memory(candidate, BenchConfig(batch_size=16, img_size=64, warmup=1))
    assert 0 < small < large


def test_bench_layer():
    result = bench_layer(BenchConfig(iters=1, warmup=1, repeats=3), shape=(2, 16, 8, 8))
    json.dumps(result)
    cands = {c["label"]: c for c in result["candidates"]}
    assert list(cands) == ["copy", "timm SEModule", "se-zoo SqueezeExcite", "timm SE, add, ReLU",
                           "se-zoo scale_add_act"]
    assert result["bytes"] == 2 * 16 * 8 * 8 * 4
    assert max(result["max_abs_diff"].values()) < 1e-5
    copy = cands["copy"]["samples_ms"]
    assert cands["copy"]["x_floor"] == 1.0 and cands["copy"]["speedup_vs_timm"] is None
    for c in cands.values():
        moves = c["bytes_moved"] // result["bytes"]
        assert moves == (2 if c["label"] == "copy" else 4 if "shortcut" in c["op"] else 3)
        assert c["floor_ms"] == pytest.approx(statistics.median(copy) * moves / 2)
        assert c["x_floor"] == pytest.approx(_paired(c["samples_ms"], [t * moves / 2 for t in copy]))
    assert cands["timm SEModule"]["speedup_vs_timm"] == cands["timm SE, add, ReLU"]["speedup_vs_timm"] == 1.0
    assert cands["se-zoo scale_add_act"]["speedup_vs_timm"] == pytest.approx(
        _paired(cands["timm SE, add, ReLU"]["samples_ms"], cands["se-zoo scale_add_act"]["samples_ms"]))
    assert "x floor" in format_table(result)


def test_bench_imports_bookkeeping(monkeypatch):
    monkeypatch.setattr(bench_imports_script, "_IMPORTS",
                        (("python", "pass"), ("timm", "import json"), ("se_zoo", "import csv")))
    result = bench_imports_script.bench_imports(repeats=2)
    cands = {c["label"]: c for c in result["candidates"]}
    bare = cands["python"]["samples_ms"]
    cost = {k: [t - b for t, b in zip(c["samples_ms"], bare)] for k, c in cands.items()}
    assert cands["timm"]["ratio"] == 1.0 and cands["python"]["ratio"] is None
    assert cands["se_zoo"]["import_ms"] == pytest.approx(statistics.median(cost["se_zoo"]))
    assert cands["se_zoo"]["ratio"] == pytest.approx(_paired(cost["se_zoo"], cost["timm"]))
    assert "vs timm" in format_table(result)


@pytest.mark.slow
def test_bench_imports_real():
    result = bench_imports_script.bench_imports(repeats=1)
    assert [c["label"] for c in result["candidates"]] == ["python", "timm", "se_zoo"]
    assert all(c["import_ms"] > 0 for c in result["candidates"][1:])


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size"),
    (dict(iters=1.5), "iters"),
    (dict(warmup=-1), "warmup"),
    (dict(threads=0), "threads"),
    (dict(device="tpu"), "device"),
    (dict(amp="int8"), "amp"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BenchConfig(**kwargs)


def test_layer_validation():
    with pytest.raises(ValueError, match="train must be False"):
        bench_layer(BenchConfig(train=True), shape=(1, 8, 2, 2))
    with pytest.raises(ValueError, match="shape must be 4 positive integers"):
        bench_layer(BenchConfig(), shape=(1, 8, 2))


def test_cli_json_and_plot(tmp_path, capsys):
    plot = tmp_path / "bench.png"
    assert main(["bench", "--model", "se_zoo_resnet18", *TINY_ARGS, "--json", "--plot", str(plot)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["label"] for c in result["results"][0]["candidates"]] == ["se_zoo_resnet18", "seresnet18", "resnet18"]
    assert result["config"]["channels_last"] is True
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_cli_layer_table_and_plot(tmp_path, capsys):
    plot = tmp_path / "layer.png"
    assert main(["bench", "--layer", "--layer-shape", "2,16,4,4", "--contiguous", *TINY_ARGS,
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "se-zoo scale_add_act" in out and "contiguous" in out
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_cli_rejects_model_in_layer_mode(capsys):
    assert main(["bench", "--layer", "--model", "se_zoo_resnet18", "-q"]) == 1
    assert "--model applies to model mode only" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["se_zoo_resnet18", "se_zoo_mobilenetv2_050"])
def test_inference_path_compiles_without_graph_breaks(name):
    # the benchmark's inference step: inference_mode, channels_last, in-place SE epilogue
    torch._dynamo.reset()
    model = timm.create_model(name).eval().to(memory_format=torch.channels_last)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(se_zoo.TIMM_EQUIVALENTS))
def test_every_model_compiles_without_graph_breaks(name):
    torch._dynamo.reset()  # models share block code: stay clear of dynamo's recompile limit
    model = timm.create_model(name).to(memory_format=torch.channels_last)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        compiled.eval()(x)
    compiled.train()(x).sum().backward()
