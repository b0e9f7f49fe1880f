"""The dashboard's static files: complete, self-contained (no CDN, no network), and written so
that what a workstation reports can never become markup or script in the admin's browser."""

from __future__ import annotations

import re
from pathlib import Path

from agent_kit.center import checks_js

STATIC = Path(checks_js.__file__).parent / "static"
PAGES = ("index.html", "agent.html", "audit.html")


def test_check_catalogue_copy_matches_the_agents() -> None:
    assert (STATIC / "checks.js").read_text("utf-8") == checks_js.render(), (
        "static/checks.js is out of date: run python3 scripts/update-generated.py")


def test_every_asset_a_page_loads_exists_and_is_local() -> None:
    for page in PAGES:
        html = (STATIC / page).read_text("utf-8")
        refs = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert refs, page
        for ref in refs:
            assert not re.match(r"^(?:[a-z]+:)?//", ref), f"{page} loads {ref} from the network"
            if ref.startswith("/static/"):
                assert (STATIC / ref.removeprefix("/static/")).is_file(), f"{page}: {ref}"


def test_no_network_and_no_inline_code() -> None:
    """A strict Content-Security-Policy (script-src 'self') must not break the pages."""
    for path in STATIC.iterdir():
        text = path.read_text("utf-8")
        urls = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, f"{path.name} names {urls}"
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), f"inline script in {path.name}"
            assert " style=" not in text and "<style" not in text, f"inline style in {path.name}"
            assert not re.search(r"\son[a-z]+=", text), f"inline handler in {path.name}"


def test_scripts_never_parse_strings_as_html() -> None:
    """Agent-supplied text (hostnames, reasons, messages) goes in through textContent only."""
    for path in STATIC.glob("*.js"):
        text = path.read_text("utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{path.name} uses {sink}"
