"""Listing like the Hub: newest first, direction, sort keys, downloads and filter= on card tags."""
import time
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.utils import build_hf_headers, get_session

CARD = b"---\nlibrary_name: timm\ntags:\n- image-classification\n- se-zoo\nlicense: apache-2.0\n---\n# model\n"


def _params(hub, **params):
    r = get_session().get(f"{hub.endpoint}/api/models", params={"author": hub.namespace, **params},
                          headers=build_hf_headers(token=hub.token))
    return r


def test_listing_sorts_newest_first_filters_and_counts_downloads(hub_server):
    api, ns = HfApi(), hub_server.namespace
    for name in ("old", "mid", "new"):
        api.create_repo(f"{ns}/{name}")
        time.sleep(0.01)
    api.upload_file(path_or_fileobj=CARD, path_in_repo="README.md", repo_id=f"{ns}/mid")
    api.upload_file(path_or_fileobj=b"\0weights", path_in_repo="model.safetensors", repo_id=f"{ns}/mid")
    api.upload_file(path_or_fileobj=b"\0weights", path_in_repo="model.safetensors", repo_id=f"{ns}/old")
    # mid then old were modified last; new was created last
    assert [m.id for m in api.list_models(author=ns, sort="last_modified", limit=1)] == [f"{ns}/old"]
    assert [m.id for m in api.list_models(author=ns)] == [f"{ns}/old", f"{ns}/mid", f"{ns}/new"]
    assert [m.id for m in api.list_models(author=ns, sort="created_at")] == [f"{ns}/new", f"{ns}/mid", f"{ns}/old"]
    r = _params(hub_server, sort="createdAt", direction="1")
    assert [m["id"] for m in r.json()] == [f"{ns}/old", f"{ns}/mid", f"{ns}/new"]
    assert _params(hub_server, direction="up").status_code == 400
    assert _params(hub_server, sort="stars").status_code == 400

    for cache in range(3):
        hf_hub_download(f"{ns}/mid", "model.safetensors", cache_dir=Path(hub_server.root).parent / f"dl{ns}{cache}")
    hf_hub_download(f"{ns}/mid", "README.md", cache_dir=Path(hub_server.root).parent / f"dl{ns}card")  # not weights
    hf_hub_download(f"{ns}/old", "model.safetensors", cache_dir=Path(hub_server.root).parent / f"dl{ns}old")
    ranked = list(api.list_models(author=ns, sort="downloads"))
    assert [(m.id, m.downloads) for m in ranked] == [(f"{ns}/mid", 3), (f"{ns}/old", 1), (f"{ns}/new", 0)]
    assert [m.likes for m in api.list_models(author=ns, sort="likes")] == [0, 0, 0]

    assert [m.id for m in api.list_models(author=ns, filter="timm")] == [f"{ns}/mid"]
    assert [m.id for m in api.list_models(author=ns, filter=["timm", "se-zoo"])] == [f"{ns}/mid"]
    assert list(api.list_models(author=ns, filter=["timm", "nlp"])) == []
    info = api.model_info(f"{ns}/mid")
    assert info.library_name == "timm" and info.tags == ["timm", "image-classification", "se-zoo"]
    assert info.downloads == 3
