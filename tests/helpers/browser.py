"""Headless Chromium for the registry's browser tests: the fixture, a wait and docs screenshots.

Skips only when no Chromium/chromedriver is installed (``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver``). With ``SE_ZOO_SCREENSHOTS=DIR``, ``screenshot`` saves small PNGs into DIR
(docs/img holds the committed ones).
"""
import os
import shutil
from pathlib import Path

import pytest

CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1280,1200", "--hide-scrollbars", "--force-device-scale-factor=1")


def find_browser():
    """``(chromium binary, chromedriver)``, each ``None`` when missing."""
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                  None)
    return binary, shutil.which("chromedriver")


@pytest.fixture(scope="module", name="browser")
def chromium(tmp_path_factory):
    """A headless Chromium (Selenium) with its browser log kept and downloads into ``browser.downloads``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    binary, driver = find_browser()
    if binary is None or driver is None:
        pytest.skip("no headless browser: Chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver; .ci/run does this)")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.downloads = downloads
    yield chrome
    chrome.quit()


def wait(browser, condition, timeout: float = 20):
    """``condition(browser)`` once it is truthy; raises selenium's TimeoutException after ``timeout`` s."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda d: condition(d))


def screenshot(browser, name: str, element_css: str = "main") -> None:
    """Save the viewport, cut below ``element_css``, as a docs-sized PNG when SE_ZOO_SCREENSHOTS names a folder."""
    target = os.environ.get("SE_ZOO_SCREENSHOTS")
    if not target:
        return
    from PIL import Image

    Path(target).mkdir(parents=True, exist_ok=True)
    raw = Path(target) / f".{name}.raw.png"
    browser.save_screenshot(str(raw))
    height = browser.execute_script(f"return document.querySelector({element_css!r}).getBoundingClientRect().bottom")
    with Image.open(raw) as image:  # cut to the page; a 256-colour palette keeps it well under 100 kB
        image = image.convert("RGB").crop((0, 0, image.width, min(image.height, int(height) + 8)))
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(Path(target) / f"{name}.png", optimize=True)
    raw.unlink()
