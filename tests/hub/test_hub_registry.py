"""Models through the local registry: timm and se-zoo push, upload and load, and a pushed training output's pages.

The registry's own behaviour (API, LFS, Xet, pages) is tested without torch in ``tests/registry``.
"""
import re
import urllib.request

import huggingface_hub
import timm
import torch
from huggingface_hub import HfApi
from timm.models import save_for_hf

from helpers.web_repos import get_page, metrics_lines, page_text
from helpers.weights import randomize_

from se_zoo.hub import CardOptions, from_pretrained, push_to_hub, save_pretrained

# huggingface_hub >= 1.0 uploads through Xet by default; older clients ask the repo's xetEnabled, which the
# registry does not report, and upload by LFS
XET_CLIENT = not huggingface_hub.__version__.startswith("0.")


def test_timm_loads_checkpoint_uploaded_with_upload_folder(hub_server, tmp_path):
    model = randomize_(timm.create_model("test_resnet", num_classes=7)).eval()
    save_for_hf(model, str(tmp_path / "ckpt"), safe_serialization=True)
    repo_id = f"{hub_server.namespace}/test-resnet"
    HfApi().create_repo(repo_id)
    HfApi().upload_folder(folder_path=tmp_path / "ckpt", repo_id=repo_id)

    loaded = timm.create_model(f"hf-hub:{repo_id}", pretrained=True).eval()
    expected, got = model.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_timm_push_to_hf_hub_and_hf_hub_loading(hub_server):
    repo_id = f"{hub_server.namespace}/timm-push"
    model = timm.create_model("resnet10t", num_classes=7).eval()
    before = hub_server.registry.xet.received_bytes
    timm.models.push_to_hf_hub(model, repo_id)
    assert (hub_server.registry.xet.received_bytes > before) == XET_CLIENT
    loaded = timm.create_model(f"hf-hub:{repo_id}", pretrained=True).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_se_zoo_push_to_hub_round_trip(hub_server):
    repo_id = f"{hub_server.namespace}/se-push"
    model = timm.create_model("seresnet18", num_classes=5).eval()
    before = hub_server.registry.xet.received_bytes
    push_to_hub(model, repo_id)
    assert (hub_server.registry.xet.received_bytes > before) == XET_CLIENT
    pulled = from_pretrained(repo_id).eval()
    for (name, a), (_, b) in zip(model.state_dict().items(), pulled.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_pushed_training_output_has_its_pages(hub_server, tmp_path):
    repo_id = f"{hub_server.namespace}/se-r18-digits"
    model = randomize_(timm.create_model("se_zoo_resnet18", layers=(1, 1, 1, 1), num_classes=3)).eval()
    out = tmp_path / "run"
    sha256 = save_pretrained(model, out, card=CardOptions(metrics={"top1": 93.25, "top5": 99.5}, datasets="digits"))
    (out / "metrics.jsonl").write_bytes(metrics_lines(4))  # as `se-zoo train` leaves its output folder
    pushed = push_to_hub(out, repo_id, commit_message="Publish the digits run")

    page = get_page(hub_server.endpoint, f"/{repo_id}")
    text = page_text(page)
    assert "Model card for se-r18-digits" in text  # pushed cards are titled by the repo, whatever was pushed
    metrics = page_text(page[page.index('id="metrics"'):page.index("</table>", page.index('id="metrics"'))])
    assert "digits top1 93.25" in metrics and "digits top5 99.5" in metrics
    # randomized, not trained: config.json says random_init, so the page says untrained and builds without weights
    assert "Untrained: these weights are a random initialization" in text
    assert f'model = timm.create_model( "hf-hub:{repo_id}", pretrained=False)' in text
    assert f'model = from_pretrained( "{repo_id}")' in text and f"hf download {repo_id}" in text
    assert f"export HF_ENDPOINT={hub_server.endpoint}" in text
    assert "library timm" in text and "dataset digits" in text
    charts = re.findall(r"<svg[^>]*>.*?</svg>", page, re.S)
    assert len(charts) == 2 and all(c.count("<polyline") == 2 for c in charts)  # loss: train/val; top-1/top-5

    files = get_page(hub_server.endpoint, f"/{repo_id}/tree/main")
    listed = re.findall(r'<tr class="file">\s*<td><a href="[^"]+">([^<]+)</a>', files)
    assert listed == ["README.md", "config.json", "metrics.jsonl", "model.safetensors"]
    assert f'title="{sha256}"' in files  # the weights are an LFS file; its sha256 is shown
    assert f'href="/{repo_id}/resolve/main/metrics.jsonl"' in files and "Publish the digits run" in files
    with urllib.request.urlopen(f"{hub_server.endpoint}/{repo_id}/resolve/main/metrics.jsonl") as response:
        assert response.read() == (out / "metrics.jsonl").read_bytes()

    commits = page_text(get_page(hub_server.endpoint, f"/{repo_id}/commits/main"))
    assert "Publish the digits run" in commits and pushed.commit_sha[:10] in commits
    assert "added model.safetensors" in commits and "added metrics.jsonl" in commits
    config = get_page(hub_server.endpoint, f"/{repo_id}/blob/main/config.json")
    assert "&#34;architecture&#34;: &#34;se_zoo_resnet18&#34;" in config
    listing = page_text(get_page(hub_server.endpoint, f"/?search={repo_id}"))
    assert repo_id in listing and "se_zoo_resnet18" in listing and "top-1 93.25" in listing
