"""The leaderboard page in a real headless browser (Debian's chromium driven by Playwright).

CI (.ci/run) installs chromium; the test is skipped only when the browser binary is absent.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from in21k_bench import leaderboard as lb

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
COMMITTED_PAGE = Path(__file__).resolve().parents[1] / "leaderboard" / "site" / "index.html"


def _verified_entry() -> lb.Submission:
    runs = [0.301, 0.305, 0.299]
    return lb.Submission(
        method="Test method",
        slug="test-method",
        backbone="DINOv2 ViT-B/14",
        benchmark="tiny",
        benchmark_version="v1",
        package_version="0.1.0",
        num_runs=3,
        predictions_sha256=[c * 64 for c in "abc"],
        predictions=[f"https://example.org/preds/run-{i}.npy" for i in (1, 2, 3)],
        metrics={"acc": lb.MetricStat.from_runs(runs), "nmi": lb.MetricStat.from_runs([0.6, 0.61, 0.62])},
        status="verified",
        date=dt.date(2025, 1, 1),
        code_url="https://example.org/code",
    )


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    subs = lb.paper_seed_submissions() + [_verified_entry()]
    path = tmp_path_factory.mktemp("site") / "index.html"
    path.write_text(lb.render_html(subs), encoding="utf-8")
    return path, subs


class Page:
    """A loaded page with every console message, page error and network request recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.set_default_timeout(10_000)
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            self.requests.append(r.request.url)
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("#entries tbody tr")

    def rows(self) -> list[dict]:
        return self.page.eval_on_selector_all(
            "#entries tbody tr",
            """trs => trs.map(tr => ({
                benchmark: tr.dataset.benchmark, family: tr.dataset.family, backbone: tr.dataset.backbone,
                method: tr.dataset.method, status: tr.dataset.status, supervised: tr.classList.contains('supervised'),
                acc: tr.querySelector('td[data-key=acc]').dataset.value,
                methodText: tr.querySelector('td[data-key=method]').textContent }))""",
        )

    def sort_by(self, key: str) -> None:
        self.page.click(f"#entries th[data-key='{key}'] button")

    def clean(self) -> bool:
        bad = [c for c in self.console if c[0] in ("error", "warning")]
        external = [u for u in self.requests if not u.startswith("file://")]
        return not bad and not self.errors and not external

    def close(self):
        self.page.close()


def test_committed_page_loads_without_errors(browser):
    assert COMMITTED_PAGE.is_file(), "run `in21k-bench leaderboard build`"
    pg = Page(browser, COMMITTED_PAGE)
    try:
        n = len(pg.rows())
        assert n == len(lb.load_submissions(COMMITTED_PAGE.parents[1]))
        assert pg.page.inner_text("#row-count") == f"{n} of {n} entries"
        assert pg.page.locator("#charts svg").count() == 2
        assert pg.clean(), (pg.console, pg.errors, pg.requests)
    finally:
        pg.close()


def test_sorting(browser, site):
    path, subs = site
    pg = Page(browser, path)
    try:
        rows = pg.rows()
        assert len(rows) == len(subs)
        pg.sort_by("acc")  # numbers: descending first
        accs = [float(r["acc"]) for r in pg.rows()]
        assert accs == sorted(accs, reverse=True) and accs[0] == pytest.approx(0.9596)
        assert pg.page.get_attribute("th[data-key=acc]", "aria-sort") == "descending"
        pg.sort_by("acc")  # again: ascending
        accs = [float(r["acc"]) for r in pg.rows()]
        assert accs == sorted(accs) and accs[0] == pytest.approx(0.1865)
        assert pg.page.get_attribute("th[data-key=acc]", "aria-sort") == "ascending"
        pg.sort_by("method")  # text: ascending first
        methods = [r["method"] for r in pg.rows()]
        assert methods == sorted(methods, key=str.lower) or methods == sorted(methods)
        assert methods != [r["method"] for r in rows]
        assert pg.page.get_attribute("th[data-key=acc]", "aria-sort") == "none"
        pg.sort_by("top5_L")  # entries without the metric stay last in both directions
        vals = [r["acc"] for r in pg.rows()]
        n_with = sum("top5_L" in s.metrics for s in subs)
        top5 = pg.page.eval_on_selector_all(
            "#entries tbody td[data-key=top5_L]", "tds => tds.map(t => t.dataset.value || null)"
        )
        assert all(v is not None for v in top5[:n_with]) and all(v is None for v in top5[n_with:])
        assert [float(v) for v in top5[:n_with]] == sorted((float(v) for v in top5[:n_with]), reverse=True)
        assert len(vals) == len(subs)
        assert pg.clean(), (pg.console, pg.errors, pg.requests)
    finally:
        pg.close()


def test_filtering_and_chart(browser, site):
    path, subs = site
    pg = Page(browser, path)
    try:
        page = pg.page
        fam = {n: f for n, f in lb.benchmark_order()}
        # family
        page.select_option("#filter-family", "coarse")
        rows = pg.rows()
        assert rows and all(r["family"] == "coarse" for r in rows)
        assert len(rows) == sum(fam[s.benchmark] == "coarse" for s in subs) == 32
        # + method: intersection
        page.select_option("#filter-method", "TEMI")
        rows = pg.rows()
        assert [r["benchmark"] for r in rows] == [f"coarse-d{d}" for d in range(1, 9)]
        assert page.inner_text("#row-count") == f"8 of {len(subs)} entries"
        # the charts follow the method filter (not the family filter): one TEMI series per chart
        for cf in ("frequency", "coarse"):
            series = page.eval_on_selector_all(
                f".chart[data-family={cf}] polyline", "ps => ps.map(p => p.dataset.series)"
            )
            assert series == ["TEMI · iBOT ViT-L (IN-21K) · reported"]
        assert page.locator(".chart[data-family=coarse] circle").count() == 8
        # reset, then backbone
        page.click("#reset")
        assert len(pg.rows()) == len(subs)
        page.select_option("#filter-backbone", "MAE-R ViT-H")
        rows = pg.rows()
        assert {r["benchmark"] for r in rows} == {"imagenet-1k", "imagenet-1k-odd", "real1k"} and len(rows) == 12
        assert page.locator(".chart polyline").count() == 0  # MAE-R has no frequency / coarse entries
        page.select_option("#filter-backbone", "")
        # status: the verified entry only
        page.select_option("#filter-status", "verified")
        rows = pg.rows()
        assert [(r["method"], r["benchmark"], r["status"]) for r in rows] == [("Test method", "tiny", "verified")]
        page.select_option("#filter-status", "")
        # supervised upper bounds hidden
        page.uncheck("#show-supervised")
        rows = pg.rows()
        assert len(rows) == sum(not s.supervised for s in subs) and not any(r["supervised"] for r in rows)
        assert all("(upper bound)" not in r["methodText"] for r in rows)
        # frequency chart: the three clustering methods of iBOT plus the verified entry's one point
        assert page.locator(".chart[data-family=frequency] polyline").count() == 3
        assert page.locator(".chart[data-family=frequency] circle").count() == 3 * 5 + 1
        # an impossible combination shows the empty message
        page.check("#show-supervised")
        page.select_option("#filter-backbone", "MAE-R ViT-H")
        page.select_option("#filter-benchmark", "tiny")
        assert pg.rows() == [] and page.is_visible("#empty")
        assert pg.clean(), (pg.console, pg.errors, pg.requests)
    finally:
        pg.close()
