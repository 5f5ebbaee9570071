"""The registry's pages in a real browser: headless Chromium driven by Selenium.

Skips only when no Chromium/chromedriver is installed (``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver``). With ``SE_ZOO_SCREENSHOTS=DIR`` it also saves the list, model and files pages
(and the model page on a phone and in the dark theme) as small PNGs into DIR (docs/img holds the
committed ones).
"""
import hashlib
import json
import time
from pathlib import Path

import pytest
from helpers.web_repos import SE_CARD, commit, se_repo
from helpers.browser import chromium, screenshot, wait  # noqa: F401 (chromium: the "browser" fixture)
from helpers.hub import point_client_at

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

READ, WRITE = "browser-read-token", "browser-write-token"
TEAM = "vision-team"
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fresh registry with one pushed se-zoo training output, a few other models and a private one."""
    import timm
    from helpers.weights import randomize_

    from se_zoo.hub import CardOptions, push_to_hub, save_pretrained
    from se_zoo.registry.app import HubServer

    server = HubServer(tmp_path / "hub", {READ: "read", WRITE: "write"}).start()
    point_client_at(monkeypatch, server.endpoint, WRITE, tmp_path / "hf_home")
    store = server.registry.store
    for name, top1, arch, params in (("se-resnet50-pets", 93.1, "se_zoo_resnet50", 26.11),
                                     ("se-mobilenetv2-flowers", 88.4, "se_zoo_mobilenetv2_100", 2.93),
                                     ("se-resnext50-food", 84.9, "se_zoo_resnext50_32x4d", 25.72)):
        se_repo(store, f"{TEAM}/{name}", top1=top1, architecture=arch, params=params)
    store.create_repo("nlp-team", "tokenizer-notes", False)
    commit(store, "nlp-team/tokenizer-notes", {"README.md": b"---\nlibrary_name: transformers\ntags: [nlp]\n---\n"
                                                            b"# Tokenizer notes\n"})
    se_repo(store, f"{TEAM}/secret-se-resnet152", private=True, architecture="se_zoo_resnet152", params=66.82)

    # the log `se-zoo quickstart` wrote training se_zoo_resnet18 on digits 0-4 (5 classes, 5 epochs)
    metrics = (DATA / "digits_0_4_metrics.jsonl").read_bytes()
    best = max((json.loads(line) for line in metrics.splitlines()), key=lambda r: r["top1"])
    model = randomize_(timm.create_model("se_zoo_resnet18", layers=(1, 1, 1, 1), num_classes=5)).eval()
    out = tmp_path / "run"
    save_pretrained(model, out, card=CardOptions(
        model_name="se-resnet18-digits-0-4", license="apache-2.0", datasets="digits",
        metrics={"top1": round(best["top1"], 2), "top5": round(best["top5"], 2)}))
    (out / "metrics.jsonl").write_bytes(metrics)
    push_to_hub(out, f"{TEAM}/se-resnet18-digits-0-4", commit_message="Train on digits 0-4")
    yield server, out
    server.stop()


def test_browse_search_read_download_and_private_repos(browser, registry):
    server, out = registry
    base, model_id = server.endpoint, f"{TEAM}/se-resnet18-digits-0-4"
    browser.get(base + "/")
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.model-id")]
    assert model_id in listed and len(listed) == 5 and f"{TEAM}/secret-se-resnet152" not in listed
    screenshot(browser, "web-list")

    box = browser.find_element(By.ID, "search")
    box.send_keys("digits", Keys.ENTER)
    wait(browser, lambda d: "search=digits" in d.current_url)
    (row,) = browser.find_elements(By.CSS_SELECTOR, "a.model-id")
    assert row.text == model_id
    row.click()
    wait(browser, lambda d: d.current_url == f"{base}/{model_id}")

    chart = browser.find_element(By.CSS_SELECTOR, "#curves svg")
    assert chart.is_displayed() and chart.size["width"] > 250 and chart.size["height"] > 120
    lines = browser.find_elements(By.CSS_SELECTOR, "#curves polyline")
    assert len(lines) == 4 and all(line.size["width"] > 200 for line in lines)  # a flat top-5 has no height
    metrics = browser.find_element(By.ID, "metrics")
    assert metrics.is_displayed() and "top1" in metrics.text and "digits" in metrics.text
    assert "Model card for se-resnet18-digits-0-4" in browser.find_element(By.ID, "card").text
    snippet = browser.find_element(By.ID, "snippet-timm")
    # its weights are randomized, and config.json says so: the untrained snippet (pretrained=False)
    assert snippet.is_displayed() and f'"hf-hub:{model_id}",\n    pretrained=False)' in snippet.text
    screenshot(browser, "web-model")

    browser.find_element(By.ID, "tab-files").click()
    wait(browser, lambda d: d.current_url == f"{base}/{model_id}/tree/main")
    screenshot(browser, "web-files")
    for name in ("model.safetensors", "config.json"):
        link = browser.find_element(By.XPATH, f"//tr[td/a[text()='{name}']]//a[@class='download']")
        link.click()
        saved = browser.downloads / name
        wait(browser, lambda d, saved=saved: saved.is_file() and not list(d.downloads.glob("*.crdownload")), 60)
        assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256((out / name).read_bytes()).digest()

    private = f"{base}/{TEAM}/secret-se-resnet152"
    browser.get(private)
    assert browser.find_element(By.ID, "error-message").text == f"Repository {TEAM}/secret-se-resnet152 not found."
    browser.find_element(By.ID, "login-link").click()
    token = wait(browser, lambda d: d.find_elements(By.ID, "token"))[0]
    token.send_keys(READ, Keys.ENTER)
    wait(browser, lambda d: d.current_url == private and d.find_elements(By.ID, "card"))
    assert "Model card for secret-se-resnet152" in browser.find_element(By.ID, "card").text
    assert browser.get_cookie("se_zoo_token")["httpOnly"] is True
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: invisible to scripts
    browser.get(base + "/")
    assert f"{TEAM}/secret-se-resnet152" in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.model-id")]
    browser.find_element(By.ID, "logout").click()
    wait(browser, lambda d: d.find_elements(By.ID, "login-link"))
    browser.get(private)
    assert browser.find_elements(By.ID, "error-message") and not browser.find_elements(By.ID, "card")


def test_the_page_runs_no_script(browser, registry):
    server, _ = registry
    store = server.registry.store
    store.create_repo("evil", "card", False)
    commit(store, "evil/card", {"README.md": SE_CARD.format(name="card", top1=1, params=1).encode() +
                                b"\n<img src=x onerror=\"document.title='pwned'\">\n"
                                b"<script>document.title='pwned'</script>\n"
                                b"<a id=\"js\" href=\"javascript:document.title='pwned'\">click me</a>\n"})
    browser.get(f"{server.endpoint}/evil/card")
    for link in browser.find_elements(By.PARTIAL_LINK_TEXT, "click me"):
        link.click()
    time.sleep(0.5)
    assert browser.title != "pwned" and browser.title.startswith("evil/card")


HOSTILE_BIG = ("# Hostile layout\n\n" + "w" * 820_000 + "\n\n" +
               "|" + "|".join(f"column {i}" for i in range(150)) + "|\n|" + "---|" * 150 + "\n" +
               ("|" + "|".join(f"cell-{i}" for i in range(150)) + "|\n") * 60 + "\n" +
               "```\n" + "code " * 5000 + "\n```\n\n" + "[" + "link" * 3000 + "](https://example.com)\n\n" +
               "<table><tr>" + "<td>raw</td>" * 200 + "</tr></table>\n\n" + "> " * 40 + "deep quote\n")
PAGE_TYPES = ("/", "/demo/r18", "/demo/r18/tree/main", "/demo/r18/blob/main/config.json",
              "/demo/r18/blob/main/README.md", "/demo/r18/blob/main/model.safetensors", "/demo/r18/commits/main",
              "/demo/r18/commit/main", "/login", "/demo/r18/discussions")


@pytest.fixture
def pages(tmp_path):
    """A torch-free registry with a model of every kind of content the pages show, and a hostile card."""
    from se_zoo.registry.app import HubServer

    server = HubServer(tmp_path / "hub", {READ: "read"}).start()
    store = server.registry.store
    for name in ("se-resnet50-pets", "se-mobilenetv2-flowers-with-a-rather-long-repository-name"):
        se_repo(store, f"{TEAM}/{name}")
    se_repo(store, "demo/r18")
    card = SE_CARD.format(name="r18", top1=97.5, params=11.18) + (
        "\n| metric | value |\n|:--|--:|\n| top-1 | 97.5 |\n\n- [x] trained\n- [ ] exported\n\n"
        "Trained on digits[^1].\n\n```python\nmodel = timm.create_model(\"se_zoo_resnet18\")  # weights\n```\n\n"
        "![architecture](assets/arch.png)\n\n[^1]: Digits 0-4.\n")
    commit(store, "demo/r18", {"README.md": card.encode(), "assets/arch.png": _png()}, title="Card with a figure",
           message="Adds the figure.\n\nA second paragraph.")
    store.create_repo("evil", "layout", False)
    commit(store, "evil/layout", {"README.md": HOSTILE_BIG.encode()})
    yield server
    server.stop()


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (26, 107, 214)).save(buffer, "PNG")
    return buffer.getvalue()


def _width(browser, width: int) -> None:
    browser.set_window_size(width, 900)
    inner = browser.execute_script("return window.innerWidth")
    browser.set_window_size(2 * width - inner, 900)  # the window's frame is not the viewport


def _fits(browser) -> tuple:
    return tuple(browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"))


def _axe(browser) -> list:
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    results = axe.run()
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results["violations"]
            if v["impact"] in ("serious", "critical")]


def test_the_hostile_layout_card_loads_fast_and_never_widens_the_page(browser, pages):
    url = f"{pages.endpoint}/evil/layout"
    browser.get(url)  # the server renders a card once (about 0.5 s here); what froze tabs was the browser's layout
    for width in (1400, 390):
        _width(browser, width)
        browser.get(f"{url}?width={width}")
        load = browser.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime")
        assert 0 < load < 2000, (width, load)
        scroll, inner = _fits(browser)
        assert scroll <= inner, (width, scroll, inner)
        notes = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#card .card-note")]
        assert any("line(s) longer than" in n for n in notes) and any("columns" in n for n in notes)
        card = browser.find_element(By.ID, "card")
        assert card.size["width"] <= inner and browser.execute_script(
            "return arguments[0].scrollWidth > arguments[0].clientWidth", card)  # it scrolls inside its box


def test_every_page_type_fits_a_phone_and_passes_axe(browser, pages):
    base = pages.endpoint
    for width in (390, 1400):
        _width(browser, width)
        for path in PAGE_TYPES:
            browser.get(base + path)
            scroll, inner = _fits(browser)
            assert scroll <= inner, (width, path, scroll, inner)
            assert browser.find_elements(By.TAG_NAME, "h1")[0].location["y"] < min(
                [h.location["y"] for h in browser.find_elements(By.CSS_SELECTOR, "h2, h3")] or [1e9]), path
            assert browser.execute_script(
                "return [document.querySelector('body > a').getAttribute('href'), "
                "document.querySelectorAll('main#main').length, document.querySelectorAll('th:not([scope])').length]"
            ) == ["#main", 1, 0], path  # a skip link first, and every table header says what it heads
            assert _axe(browser) == [], (width, path)
        browser.get(base + "/")
        tag = browser.find_element(By.CSS_SELECTOR, ".filters .chip")
        shown = "return arguments[0].checkVisibility() && arguments[0].getBoundingClientRect().height > 0"
        assert browser.execute_script(shown, tag) == (width > 800), width  # phones: folded into "Filters"
        if width == 390:
            browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
            assert browser.execute_script(shown, tag)
        browser.get(base + "/demo/r18")
        ratio = browser.execute_script(
            "const s = document.querySelector('#curves svg'); "
            "return s.getBoundingClientRect().width / s.viewBox.baseVal.width")
        tick = float(browser.execute_script(
            "return getComputedStyle(document.querySelector('#curves .tick')).fontSize")[:-2])
        assert tick * ratio >= 12, (width, tick, ratio)  # chart labels as drawn, not as written
        if width == 390:
            screenshot(browser, "web-phone")
    image = browser.find_element(By.CSS_SELECTOR, "#card img[alt=architecture]")
    assert image.get_attribute("src") == f"{base}/demo/r18/resolve/main/assets/arch.png"
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 40  # it loaded
    browser.get(base + "/demo/r18/tree/main")
    image = browser.find_element(By.CSS_SELECTOR, "#card img[alt=architecture]")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 40


def test_dark_theme_follows_the_system_and_stays_readable(browser, pages):
    _width(browser, 1400)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        for path in ("/", "/demo/r18/tree/main", "/demo/r18"):
            browser.get(pages.endpoint + path)
            background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(13, 17, 23)", background
            if path == "/demo/r18":
                screenshot(browser, "web-dark")
            assert _axe(browser) == [], path
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
