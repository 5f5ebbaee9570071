"""The ``weights/`` catalogue agrees with timm's registry and with the sources it names."""
import json
from functools import lru_cache

import pytest

import timm
from timm.models import get_pretrained_cfg

from se_zoo.models.stats import model_stats
from se_zoo.pretrained import catalog as _catalog
from se_zoo.pretrained.catalog import CatalogError, catalog_dir, families, find_record, load_records, pretrained_cfgs

RECORDS = [record for family in families() for record in load_records(family)]
_SOURCE_KEYS = ("hf_hub_id", "hf_hub_filename", "url", "license", "origin_url", "paper_ids")
_PREPROCESSING = ("input_size", "interpolation", "crop_pct", "mean", "std", "test_input_size", "test_crop_pct")


def _tupled(value):
    return tuple(value) if isinstance(value, list) else value


def _timm_source(record):
    """The timm pretrained tag a record's ``timm/...`` Hub repo holds, or None."""
    repo = (record.get("hf_hub_id") or "").split("@")[0]
    if not repo.startswith("timm/"):
        return None
    tag = repo[len("timm/"):]
    return tag if tag in timm.list_pretrained(tag) else None


def test_catalog_dir_finds_the_files():
    assert (catalog_dir() / "se_resnet.json").is_file()
    assert "se_resnet" in families()
    assert len(load_records("se_resnet")) == 16


def test_every_record_is_a_registered_tag():
    registered = set(timm.list_pretrained("se_zoo_*"))
    assert {r["tag"] for r in RECORDS} <= registered


def test_every_registered_tag_has_exactly_one_record():
    tags = [r["tag"] for r in RECORDS]
    for tag in timm.list_pretrained("se_zoo_*"):
        assert tags.count(tag) == 1, tag
        assert find_record(tag)["tag"] == tag


@pytest.mark.parametrize("record", RECORDS, ids=[r["tag"] for r in RECORDS])
def test_registry_cfg_equals_record(record):
    cfg = get_pretrained_cfg(record["tag"])
    for key in _SOURCE_KEYS:
        assert getattr(cfg, key) == (record.get(key) or None), key
    for key, value in record.get("cfg", {}).items():
        assert getattr(cfg, key) == _tupled(value), key


@pytest.mark.parametrize("record", RECORDS, ids=[r["tag"] for r in RECORDS])
def test_preprocessing_equals_timm_source(record):
    source = _timm_source(record)
    if source is None:
        pytest.skip("source is not a timm pretrained tag")
    ours, theirs = get_pretrained_cfg(record["tag"]), get_pretrained_cfg(source)
    for key in _PREPROCESSING + ("num_classes", "license"):
        assert getattr(ours, key) == getattr(theirs, key), key
    if theirs.url:
        assert ours.url == theirs.url
    if theirs.hf_hub_id:
        assert ours.hf_hub_id == theirs.hf_hub_id


def test_se_resnet_sources_are_timm_tags_with_reported_metrics():
    for record in load_records("se_resnet"):
        assert _timm_source(record), record["tag"]
        assert 50 < record["top1"] < record["top5"] < 100, record["tag"]
        assert record["metrics_source"].endswith("results/results-imagenet.csv")


@lru_cache(maxsize=None)
def _measure(arch, input_size):
    """(params in M, GMACs at ``input_size``) of ``arch``, counted on the meta device."""
    # train mode: the architecture's own count (see model_stats)
    stats = model_stats(timm.create_model(arch, device="meta"), input_size, training=True)
    return stats["params"] / 1e6, stats["gmacs"]


@pytest.mark.parametrize("record", [
    pytest.param(r, marks=pytest.mark.slow) if (r.get("params_m") or 0) > 40 else r for r in RECORDS
], ids=[r["tag"] for r in RECORDS])
def test_params_and_gmacs_match_the_model(record):
    if record.get("params_m") is None or record.get("gmacs") is None:
        pytest.skip("no params / GMACs recorded")
    params_m, gmacs = _measure(record["tag"].split(".")[0], get_pretrained_cfg(record["tag"]).input_size)
    # records round to 2 (or more) decimals
    assert params_m == pytest.approx(record["params_m"], abs=0.0051)
    assert gmacs == pytest.approx(record["gmacs"], abs=0.0051)


# ---- malformed catalogues -------------------------------------------------------------------------

_GOOD = {"tag": "arch.tag", "hf_hub_id": "org/repo", "license": "apache-2.0", "origin_url": "https://example.org"}


@pytest.fixture
def tmp_catalog(tmp_path, monkeypatch):
    """Point the catalogue at an empty tmp dir; returns a writer of ``<family>.json``."""
    monkeypatch.setattr(_catalog, "catalog_dir", lambda: tmp_path)
    load_records.cache_clear()

    def write(text, family="fam"):
        (tmp_path / f"{family}.json").write_text(text if isinstance(text, str) else json.dumps(text))

    yield write
    load_records.cache_clear()


def test_catalog_error_is_a_value_error():
    assert issubclass(CatalogError, ValueError)


def test_good_tmp_catalog_loads(tmp_catalog):
    tmp_catalog({"records": [_GOOD, {**_GOOD, "tag": "arch.other", "cfg": {"input_size": [3, 160, 160]}}]})
    cfgs = pretrained_cfgs("fam", lambda **kw: kw, ["arch", "bare"])
    assert cfgs["arch.other"]["input_size"] == (3, 160, 160)
    assert cfgs["arch.tag"]["hf_hub_id"] == "org/repo"
    assert cfgs["bare"] == {}


@pytest.mark.parametrize("content, match", [
    ("{not json", "JSON"),
    ([_GOOD], "JSON object"),
    ({"family": "fam"}, "records"),
    ({"records": {"tag": "arch.tag"}}, "list of objects"),
    ({"records": ["arch.tag"]}, "list of objects"),
    ({"records": [{**_GOOD, "license": ""}]}, "license"),
    ({"records": [{k: v for k, v in _GOOD.items() if k != "origin_url"}]}, "origin_url"),
    ({"records": [{**_GOOD, "tag": "archtag"}]}, "arch.tag"),
    ({"records": [_GOOD, _GOOD]}, "twice"),
    ({"records": [{k: v for k, v in _GOOD.items() if k != "hf_hub_id"}]}, "hf_hub_id"),
    ({"records": [{**_GOOD, "cfg": [3, 224, 224]}]}, "cfg"),
])
def test_malformed_catalog_raises(tmp_catalog, content, match):
    tmp_catalog(content)
    with pytest.raises(CatalogError, match=match):
        load_records("fam")


def test_missing_family_raises(tmp_catalog):
    with pytest.raises(CatalogError, match="nope"):
        load_records("nope")


def test_record_for_unknown_architecture_raises(tmp_catalog):
    tmp_catalog({"records": [_GOOD]})
    with pytest.raises(CatalogError, match="unknown architecture 'arch'"):
        pretrained_cfgs("fam", lambda **kw: kw, ["other"])
