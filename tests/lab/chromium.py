"""A real headless Chromium for the lab's browser tests (Debian's ``chromium``, driven by
Playwright). If it cannot start, the test fails: no skip."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium_browser() -> Iterator[object]:
    """A started Chromium (a Playwright ``Browser``), closed on leaving."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                              headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
