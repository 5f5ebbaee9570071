"""Commit pages, the safetensors and text viewers, search and "Use this model" in headless Chromium.

Torch-free: the repositories are written straight into the registry's store. With
``SE_ZOO_SCREENSHOTS=DIR`` the commit page with a tensor diff and the safetensors viewer are saved
as PNGs into DIR (docs/img holds the committed ones).
"""
import json

import pytest
from helpers.browser import chromium, screenshot, wait  # noqa: F401 (chromium: the "browser" fixture)
from helpers.web_repos import commit, page_text, se_checkpoints, se_repo

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

READ, WRITE = "views-read-token", "views-write-token"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A running registry: a fine-tuned model with two commits, 35 listed models, a private and an untrained one."""
    from se_zoo.registry.app import HubServer

    server = HubServer(tmp_path_factory.mktemp("hub"), {READ: "read", WRITE: "write"}).start()
    store = server.registry.store
    for i in range(35):
        se_repo(store, f"zoo/se-net-{i:02d}", top1=70 + i / 2,
                architecture="se_zoo_resnet50" if i % 5 == 0 else "se_zoo_mobilenetv2_100")
    se_repo(store, "zoo/private-net", private=True)
    store.create_repo("zoo", "se-resnet-untrained", False)
    commit(store, "zoo/se-resnet-untrained", {"config.json": json.dumps({
        "architecture": "se_zoo_resnet18", "weights_origin": {"kind": "random_init"}}).encode()})
    before, after = se_checkpoints()
    store.create_repo("team", "se-resnet-digits", False)
    first = commit(store, "team/se-resnet-digits", {
        "model.safetensors": before, "config.json": b'{"architecture": "se_zoo_resnet18", "num_classes": 1000}\n',
        "README.md": b"---\nlibrary_name: timm\ntags: [image-classification]\n---\n# SE-ResNet on digits\n",
        "train.log": "".join(f"epoch {e} loss {2 / e:.3f}\n" for e in range(1, 400)).encode()},
        title="Upload the ImageNet starting point")
    second = commit(store, "team/se-resnet-digits", {
        "model.safetensors": after, "config.json": b'{"architecture": "se_zoo_resnet18", "num_classes": 5}\n'},
        title="Fine-tune on digits 0-4", message="5 epochs, lr 0.01.\n\nThe head is replaced: 1000 -> 5 classes.")
    long_word = commit(store, "team/se-resnet-digits", {"notes.md": b"# Notes\n" + b"n" * 5000 + b"\n"},
                       title="Notes", message="w" * 3000)
    yield server, first, second, long_word
    server.stop()


def _no_sideways_scroll(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_commit_page_from_the_history_with_a_tensor_diff(browser, registry):
    server, first, second, _ = registry
    base = server.endpoint
    browser.get(f"{base}/team/se-resnet-digits/commits/main")
    browser.find_element(By.LINK_TEXT, "Fine-tune on digits 0-4").click()
    wait(browser, lambda d: d.current_url == f"{base}/team/se-resnet-digits/commit/{second}")
    assert browser.find_element(By.ID, "commit-message").text == \
        "5 epochs, lr 0.01.\n\nThe head is replaced: 1000 -> 5 classes."
    table = browser.find_element(By.CSS_SELECTOR, "table.tensor-diff")
    assert table.is_displayed()
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: [c.text for c in r.find_elements(By.TAG_NAME, "td")[1:]]
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert rows["fc.weight"] == ["reshaped", "F32", "[1000, 128] → [5, 128]", ""]
    assert rows["bn_final.running_mean"][:2] == ["dtype changed", "F32 → F16"]
    assert rows["layer2.0.downsample.0.weight"][0] == "removed" and rows["layer2.0.se.gate.weight"][0] == "added"
    assert rows["layer1.0.se.fc1.weight"][0] == "changed" and 0.001 <= float(rows["layer1.0.se.fc1.weight"][3]) < 0.02
    assert "conv1.weight" not in rows and "layer1.0.conv1.weight" not in rows  # unchanged ones are counted only
    diff = browser.find_element(By.CSS_SELECTOR, "pre.diff").text
    assert '-{"architecture": "se_zoo_resnet18", "num_classes": 1000}' in diff and '"num_classes": 5}' in diff
    assert _no_sideways_scroll(browser)
    screenshot(browser, "web-commit")
    browser.find_element(By.ID, "parent-link").click()
    wait(browser, lambda d: d.current_url.endswith(f"/commit/{first}"))
    assert "Upload the ImageNet starting point" in browser.find_element(By.ID, "commit-title").text


def test_safetensors_viewer_text_lines_and_raw_file(browser, registry):
    server, _, _, _ = registry
    base = server.endpoint
    browser.get(f"{base}/team/se-resnet-digits/tree/main")
    browser.find_element(By.LINK_TEXT, "model.safetensors").click()
    wait(browser, lambda d: d.find_elements(By.ID, "tensor-table"))
    names = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#tensor-table tbody tr td:first-child")]
    assert names[0] == "conv1.weight" and "fc.weight" in names and len(names) == 14
    assert browser.find_element(By.ID, "tensor-params").text == "160.45 K (160,453)"  # a 5-class head
    assert "F32" in browser.find_element(By.ID, "tensor-dtypes").text
    assert _no_sideways_scroll(browser)
    screenshot(browser, "web-safetensors")

    browser.get(f"{base}/team/se-resnet-digits/")
    browser.get(f"{base}/team/se-resnet-digits/blob/main/train.log")
    line = browser.find_element(By.CSS_SELECTOR, "#L12 td.ln a")
    assert browser.execute_script("return getComputedStyle(arguments[0], '::before').content", line) == '"12"'
    line.click()
    wait(browser, lambda d: d.current_url.endswith("#L12"))
    assert "epoch 12 loss" in browser.find_element(By.CSS_SELECTOR, "tr:target").text
    browser.find_element(By.ID, "raw-link").click()
    wait(browser, lambda d: "/raw/main/train.log" in d.current_url)
    assert browser.find_element(By.TAG_NAME, "pre").text.startswith("epoch 1 loss 2.000\nepoch 2 loss")


def test_search_filters_numbered_pages_and_top1_sort(browser, registry):
    server, _, _, _ = registry
    base = server.endpoint
    browser.get(base + "/")
    box = browser.find_element(By.ID, "search")
    box.send_keys("resnet", Keys.ENTER)
    wait(browser, lambda d: "search=resnet" in d.current_url)
    found = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.model-id")}
    assert {f"zoo/se-net-{i:02d}" for i in range(0, 35, 5)} | {"team/se-resnet-digits"} <= found
    assert "zoo/se-net-01" not in found  # a mobilenet: neither its id nor its architecture says resnet
    browser.get(base + "/?sort=top1")
    assert browser.find_element(By.CSS_SELECTOR, "a.model-id").text == "zoo/se-net-34"
    browser.find_element(By.CSS_SELECTOR, "#page-numbers a").click()
    wait(browser, lambda d: "p=1" in d.current_url)
    assert browser.find_element(By.CSS_SELECTOR, "#page-numbers [aria-current=page]").text == "2"
    assert "sort=top1" in browser.current_url


def test_copy_buttons_untrained_badge_and_downloads(browser, registry):
    server, _, _, _ = registry
    base = server.endpoint
    browser.execute_cdp_cmd("Browser.grantPermissions", {"origin": base, "permissions": [
        "clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.get(f"{base}/team/se-resnet-digits")
    buttons = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#use button.copy"))
    assert len(buttons) == 4
    snippet = browser.find_element(By.ID, "snippet-timm").text
    buttons[1].click()
    wait(browser, lambda d: buttons[1].text == "Copied")
    copied = browser.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert copied == snippet and '"hf-hub:team/se-resnet-digits"' in copied
    logs = [entry["message"] for entry in browser.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m or "Refused" in m], logs
    downloads = int(browser.find_element(By.ID, "downloads").text)
    browser.get(f"{base}/team/se-resnet-digits/resolve/main/model.safetensors")
    wait(browser, lambda d: list(d.downloads.glob("model.safetensors")), 30)
    browser.get(f"{base}/team/se-resnet-digits")
    assert int(browser.find_element(By.ID, "downloads").text) == downloads + 1

    browser.get(f"{base}/zoo/se-resnet-untrained")
    assert browser.find_element(By.ID, "untrained-badge").is_displayed()
    assert "pretrained=False" in browser.find_element(By.ID, "snippet-timm").text
    assert "HF_TOKEN" not in page_text(browser.page_source)


def test_commit_and_file_pages_fit_a_phone(browser, registry):
    server, _, second, long_word = registry
    base = server.endpoint
    browser.set_window_size(390, 900)
    try:
        for path in (f"/team/se-resnet-digits/commit/{second}", f"/team/se-resnet-digits/commit/{long_word}",
                     "/team/se-resnet-digits/blob/main/model.safetensors", "/team/se-resnet-digits/blob/main/train.log",
                     "/team/se-resnet-digits/blob/main/notes.md"):
            browser.get(base + path)
            assert _no_sideways_scroll(browser), path
    finally:
        browser.set_window_size(1280, 1200)
