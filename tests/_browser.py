"""Headless Chromium for tests: the ``chromium_driver`` fixture and small helpers.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and ``selenium``.
The fixture skips (with the reason) only when ``/usr/bin/chromium`` is missing;
a missing chromedriver or selenium next to an installed Chromium is a setup
error and fails loudly instead, so CI cannot silently stop testing the browser.

Use it from a test module::

    import browser
    from browser import save_screenshot, wait_for_js

    chromium_driver = browser.chromium_driver  # makes the fixture visible to the module

    @pytest.mark.browser
    async def test_page(chromium_driver):
        def drive():                      # Selenium is sync: run it in a thread
            chromium_driver.get(url)
            return wait_for_js(chromium_driver, "return window.done || null")
        result = await anyio.to_thread.run_sync(drive)

The event loop keeps serving the page (aiohttp on loopback) while the thread
drives the browser. Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._paths import ARTIFACTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home: tests stay on loopback
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
    "--window-size=1100,800",
)

__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "chromium_driver",
    "save_screenshot",
    "wait_for_js",
]


@pytest.fixture(scope="session")
def chromium_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (a selenium ``WebDriver``) shared by the session's tests.

    Tests must not leave state that matters behind: navigate to a fresh URL first.
    """
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's 'chromium' and 'chromium-driver' "
            "packages to run browser tests"
        )
    if not CHROMEDRIVER.exists():
        pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: install chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:  # pragma: no cover - setup error
        pytest.fail("Chromium is installed but selenium is not: pip install selenium")
    # Explicit binary and driver paths keep Selenium Manager (which downloads
    # drivers and reports usage) out of the picture; this makes sure of it.
    os.environ.setdefault("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_js(driver: Any, script: str, *, timeout: float = 15.0) -> Any:
    """Run ``script`` in the page until it returns something truthy; return that.

    Raises:
        AssertionError: after ``timeout`` seconds, with the script and the page's
            visible text, so a failure says what the page showed.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script(script)
        )
    except TimeoutException:
        body = driver.execute_script("return document.body ? document.body.innerText : ''")
        raise AssertionError(
            f"page never satisfied {script!r} within {timeout} s; it shows: {body[:500]!r}"
        ) from None


def save_screenshot(driver: Any, name: str) -> Path:
    """Save a PNG of the current page as ``artifacts/<name>.png`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"Chromium could not save a screenshot to {path}")
    return path
