"""The training lab in a real browser (JupyterLab and Voilà, headless Chromium), as a learner uses it:
the figure is drawn (ipympl), ▶ trains while the page stays live, ⏸ pauses, one iteration adds
exactly one, a bad learning rate is marked beside its field and the last good one stays, and
"open in the Stepper" shows the chosen iteration's pass. Every wait waits for a condition.
"""
from __future__ import annotations

import re

import nbformat
import pytest

from browser_util import (ARTIFACTS, ROOT, TIMEOUT_MS, LabServer, NotebookServer, VoilaServer,
                          run_all_cells)
from test_browser import browser  # noqa: F401 (the one Chromium fixture; it skips without one)

pytestmark = pytest.mark.browser
ROOT_SEL = ".bpv-lab"


def lab_notebook(folder):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import backpropviz as bpv\n"
        "lab = bpv.TrainingLab(data='two_moons', hidden=(16, 16), lr=0.5, seed=0)\n"
        "lab")]
    lesson = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    nb.metadata = lesson.metadata          # the lessons' kernel: JupyterLab starts it unasked
    path = folder / "lab.ipynb"
    nbformat.write(nb, path)
    return path


class Page:
    """The lab on a page: named waits that save a screenshot and name the step when they fail."""

    def __init__(self, page, app):
        self.page, self.app = page, app

    def fail(self, step, err):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"FAILED-lab-{self.app}-{re.sub(r'[^a-z0-9]+', '-', step.lower())}.png"
        try:
            self.page.screenshot(path=str(path), timeout=15_000)
        except Exception:           # noqa: BLE001
            pass
        pytest.fail(f"[{self.app}] '{step}' failed: {str(err).splitlines()[0]}\n"
                    f"  status: {self.status()!r}\n  screenshot: {path}", pytrace=False)

    def do(self, step, action):
        try:
            return action()
        except Exception as e:      # noqa: BLE001
            err = e
        self.fail(step, err)

    def until(self, step, js, arg=None):
        return self.do(step, lambda: self.page.wait_for_function(
            js, arg=arg, timeout=TIMEOUT_MS, polling=50))

    def status(self) -> str:
        try:
            return self.page.evaluate(f"() => (document.querySelector('{ROOT_SEL} .bpv-status')"
                                      f" || {{innerText: ''}}).innerText")
        except Exception:           # noqa: BLE001
            return ""

    def iteration(self) -> int:
        m = re.search(r"iteration (\d+)", self.status())
        return int(m.group(1)) if m else -1

    def button(self, text):
        return self.page.locator(f"{ROOT_SEL} button", has_text=text).first

    def field(self, label):
        return self.page.locator(f"{ROOT_SEL} .widget-text", has_text=label).locator("input")

    def figure_url(self) -> str:
        """The figure's pixels as a data URL ('' until ipympl has drawn into its canvas)."""
        return self.page.evaluate(f"""() => {{
            const c = [...document.querySelectorAll('{ROOT_SEL} canvas')]
                .find(c => c.width > 300 && c.height > 100);
            return c ? c.toDataURL() : ''; }}""")


def open_in_lab(P: Page, server: LabServer):
    P.do("open the notebook", lambda: P.page.goto(server.url("lab.ipynb")))
    run_all_cells(P.do, P.page, ready=ROOT_SEL)


@pytest.fixture(params=["lab", "notebook7", "voila"])
def lab_page(request, browser, tmp_path):  # noqa: F811
    app = request.param
    nb = lab_notebook(tmp_path)
    server = {"lab": LabServer, "notebook7": NotebookServer}.get(app)
    server = server(tmp_path, tmp_path) if server else VoilaServer(tmp_path, nb)
    request.addfinalizer(server.stop)
    server.start(cwd=tmp_path)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    request.addfinalizer(context.close)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    P = Page(page, app)
    if app != "voila":             # JupyterLab and Notebook 7 share their menus
        open_in_lab(P, server)
    else:
        P.do("open the lab in Voilà", lambda: page.goto(server.url(), timeout=TIMEOUT_MS))
    P.until("the lab is shown, ready at iteration 0",
            f"() => {{ const s = document.querySelector('{ROOT_SEL} .bpv-status');"
            f" return !!s && /iteration 0\\b/.test(s.innerText) && /ready/.test(s.innerText); }}")
    return P


def test_train_pause_and_open_an_iteration_in_the_browser(lab_page):
    P, page = lab_page, lab_page.page
    P.until("the figure is drawn (ipympl canvas with pixels)",
            f"() => {{ const c = [...document.querySelectorAll('{ROOT_SEL} canvas')]"
            f".find(c => c.width > 300 && c.height > 100); return !!c && c.toDataURL().length > 20000; }}")
    before = P.figure_url()
    page.locator(f"{ROOT_SEL} .bpv-lab-figure").first.scroll_into_view_if_needed()
    P.do("press ▶ train", lambda: P.button("train").click())
    P.until("training runs: the status passes iteration 100 and says training",
            f"() => {{ const s = document.querySelector('{ROOT_SEL} .bpv-status').innerText;"
            f" const m = s.match(/iteration (\\d+)/); return !!m && +m[1] >= 100"
            f" && /training/.test(s); }}")
    P.until("the figure changes while training (the boundary moves)",
            f"(before) => {{ const c = [...document.querySelectorAll('{ROOT_SEL} canvas')]"
            f".find(c => c.width > 300 && c.height > 100); return !!c && c.toDataURL() !== before; }}",
            before)
    P.do("press ⏸ pause", lambda: P.button("pause").click())
    P.until("paused", f"() => /paused/.test(document.querySelector('{ROOT_SEL} .bpv-status')"
                      f".innerText)")
    t1 = P.iteration()
    assert t1 >= 100
    P.do("press one iteration", lambda: P.button("one iteration").click())
    P.until("exactly one more iteration", f"(t) => new RegExp('iteration ' + (t + 1) + '\\\\b')"
            f".test(document.querySelector('{ROOT_SEL} .bpv-status').innerText)", t1)

    # a bad learning rate: marked beside its field, the last good one stays in force
    lr = P.field("learning rate")
    P.do("type a learning rate of -1", lambda: (lr.fill("-1"), lr.press("Enter")))
    P.until("the error is shown beside the field",
            f"() => {{ const e = document.querySelector('{ROOT_SEL} .bpv-field-error');"
            f" return !!e && /positive/.test(e.innerText); }}")
    assert "α = 0.5" in P.status()
    P.do("type a learning rate of 0.5 again", lambda: (lr.fill("0.5"), lr.press("Enter")))
    P.until("the error is gone", f"() => !document.querySelector('{ROOT_SEL} .bpv-field-error')")

    # open iteration t1, example 2 in the Stepper
    it = P.field("iteration t")
    ex = P.field("example")
    P.do("choose the iteration", lambda: it.fill(str(t1)))
    P.do("choose example 2", lambda: (ex.fill("2"), ex.press("Tab")))
    P.do("press open in the Stepper", lambda: P.button("open in the Stepper").click())
    P.until("the Stepper shows that iteration's pass at step 0 of 18",
            f"(t) => {{ const st = document.querySelector('{ROOT_SEL} .bpv-stepper');"
            f" const cap = document.querySelector('{ROOT_SEL}').innerText;"
            f" return !!st && /0\\/18/.test(st.innerText) && cap.includes('Iteration ' + t + ':')"
            f" && cap.includes('example 2 of its batch'); }}", t1)
    assert P.iteration() == t1 + 1          # nothing trained in the background meanwhile
    page.evaluate(f"() => document.querySelector('{ROOT_SEL} .bpv-stepper')"
                  f".scrollIntoView({{block: 'start'}})")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"lab-{P.app}-stepper.png"))
    page.locator(f"{ROOT_SEL} .bpv-lab-figure").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"lab-{P.app}-trained.png"))
    errors = page.evaluate(f"() => [...document.querySelectorAll('{ROOT_SEL} [role=alert]')]"
                           f".map(e => e.innerText).filter(t => t.trim())")
    assert errors == []
    # axe-core on the lab (the Stepper inside it has its own checks in test_a11y.py)
    from axe_playwright_python.sync_playwright import Axe
    res = P.do("axe on the lab", lambda: Axe().run(
        page, context={"include": [[ROOT_SEL]], "exclude": [[f"{ROOT_SEL} .bpv-stepper"]]},
        options={"resultTypes": ["violations"]}))
    found = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
             for v in res.response["violations"]]
    print(f"\n[{P.app}] axe-core violations in the lab: {found or 'none'}")
    bad = [f for f in found if f[1] in ("serious", "critical")]
    if bad:
        P.fail("axe: no serious or critical violation in the lab", bad)
