"""A real browser for the tests: Debian's Chromium (installed by `make test`), driven
by Playwright, offline."""
from __future__ import annotations

import shutil
from pathlib import Path

# no background connections: this machine's network is closed
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("the browser tests need Chromium: `make test` installs Debian's chromium package")
    return found


def open_page(path: Path, screenshot: Path) -> dict:
    """Open a local page; returns its section ids, every image's (alt, decoded width,
    height), the URLs it requested and the page text; writes a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
            sections = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete ? e.naturalWidth : 0, e.naturalHeight])")
            text = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"sections": sections, "images": images, "requests": requests, "text": text}
