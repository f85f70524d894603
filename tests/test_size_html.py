"""`inspect --report html`: one self-contained page (no network, no external asset) with a
treemap of the image's bytes by layer and package, rendered in headless Chromium (Debian's
``chromium``): a screenshot is taken and its pixels checked, and the DOM Chromium built is
checked for the treemap and the tables."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from reprolock.cli.size_html import colour
from tests import realparts
from tests.checkfiles import archive, deb, dist, status
from tests.conftest import SUMMARY, Run
from tests.ociregistry import LayerFiles, Link
from tests.pngread import colours, pixels

Cli = Callable[..., Run]
MB = 1_000_000
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,900",
)


def _image(folder: Path) -> str:
    cudnn, cudnn_files = deb(
        "libcudnn9-cuda-12",
        "9.1.0.70-1",
        {"usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0": b"\x7fELF" + bytes(30 * MB)},
    )
    libc, libc_files = deb("libc6", "2.36-9", {"usr/lib/x86_64-linux-gnu/libc.so.6": bytes(MB)})
    base: LayerFiles = {
        **cudnn_files,
        **libc_files,
        "usr/lib/x86_64-linux-gnu/libcudnn.so.9": Link("libcudnn.so.9.1.0"),
        "var/lib/dpkg/status": status(cudnn, libc),
        "tmp/setup.tar.gz": bytes(12 * MB),
    }
    venv: LayerFiles = {
        "opt/venv/pyvenv.cfg": b"",
        **dist(
            "nvidia-cudnn-cu12",
            "9.1.0.70",
            {"nvidia/cudnn/lib/libcudnn.so.9": b"\x7fELF" + bytes(25 * MB)},
        ),
        "models/model.safetensors": bytes(20 * MB),
        "data/<script>alert(1)</script><img src=x>.npy": bytes(2 * MB),  # escaped, never markup
    }
    cleanup: LayerFiles = {"tmp/.wh.setup.tar.gz": b""}
    return archive(folder, "image", base, venv, cleanup)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    realparts.require("chromium")
    raise AssertionError("unreachable: require skips or fails")


def test_the_page_is_self_contained_and_deterministic(cli: Cli, tmp_path: Path) -> None:
    image = _image(tmp_path)
    pages = []
    for name in ("a.html", "b.html"):
        run = cli("inspect", "--report", "html", "-o", str(tmp_path / name), image)
        assert (run.code, run.out) == (0, ""), run.err
        pages.append((tmp_path / name).read_text())
    assert pages[0] == pages[1]
    page = pages[0]
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    # The SVG namespace is a name, never fetched; nothing else points anywhere.
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]
    tags = _Tags()
    tags.feed(page)
    assert not tags.found & {"script", "link", "img", "iframe", "object", "embed", "base"}
    assert not tags.attributes & {"src", "href", "srcset", "action", "onerror", "onload"}
    assert "url(" not in page and "@import" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x&gt;.npy" in page  # as text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_the_treemap_renders_in_headless_chromium(cli: Cli, tmp_path: Path) -> None:
    chromium = _chromium()
    image = _image(tmp_path)
    page = tmp_path / "size.html"
    run = cli("inspect", "--report", "html", "-o", str(page), image)
    assert run.code == 0, run.err
    size = json.loads(cli("--format", "json", "inspect", "--size", image).out)["size"]
    screenshot = tmp_path / "size.png"
    common = (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}")
    subprocess.run(
        [chromium, *common, f"--screenshot={screenshot}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [chromium, *common, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    # The DOM Chromium built: the treemap with one box per layer and its cells, the tables.
    assert dom.count('class="layer-box"') == len([x for x in size["layers"] if x["bytes"]]) == 2
    assert 'data-group="python nvidia-cudnn-cu12"' in dom
    assert 'data-group="apt libcudnn9-cuda-12"' in dom
    assert 'data-group="wasted"' in dom
    for heading in ("Layers", "Packages", "Duplicate libraries", "Data files", "Wasted"):
        assert f"<h2>{heading}</h2>" in dom
    assert "<td>libcudnn</td>" in dom and "<td>/models/model.safetensors</td>" in dom
    # What it painted: the largest cells' fills cover real areas of the screenshot.
    width, height, rows = pixels(screenshot)
    assert (width, height) == (1280, 900)
    painted = colours(rows)
    for group, least in (
        ("apt libcudnn9-cuda-12", 20_000),
        ("python nvidia-cudnn-cu12", 20_000),
        ("data /models/model.safetensors", 20_000),
        ("wasted", 5_000),
    ):
        fill = colour(group)
        rgb = tuple(int(fill[i : i + 2], 16) for i in (1, 3, 5))
        near = sum(
            n
            for c, n in painted.items()
            if all(abs(a - b) <= 2 for a, b in zip(c, rgb, strict=True))
        )
        assert near >= least, f"{group} ({fill}) covers {near} pixels"
    SUMMARY.append(
        f"size report: {page.stat().st_size} bytes of HTML, screenshot {screenshot.stat().st_size} "
        f"bytes ({width}x{height}) rendered by {chromium}"
    )
