"""The lesson in a real browser, clicked through the way a learner does it.

For JupyterLab (Run All through the menu) and for Voilà, in headless Chromium:

* ▶ through the whole forward and backward pass: after every click the graph shows the next step
  (the svg's ``data-step``), another module/node is highlighted (``cur-F`` forward, ``cur-B``
  backward; the very ones backpropviz itself says the step writes), the counter and the equation
  change (and the equation is typeset by MathJax);
* ⏮ reset, ⏭ backward pass and ◀;
* predict, then reveal: a wrong answer gets a ✘ hint and no step; the right one (computed here by
  backpropviz from the lesson's numbers, not read from the kernel) gets ✔ and the step;
* click-to-graph latency over 15 clicks → artifacts/browser/latency.json (a figure, not a limit);
* screenshots at key moments → artifacts/browser/*.png; a failed wait saves
  ``FAILED-<app>-<step>.png`` and the failure names the step.

Run: ``.venv/bin/python -m pytest tests/test_browser.py -q -s -p no:cacheprovider``.
Without /usr/bin/chromium or Playwright every test is skipped, saying so.
"""
from __future__ import annotations

import json
import time

import nbformat
import numpy as np
import pytest

from backpropviz.core.keys import text as key_text
from backpropviz.display.presentation import present
from browser_util import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, LabServer,
                          Learner, NotebookServer, VoilaServer, chromium_missing, copy_notebooks,
                          latency_summary, run_all_cells)

MISSING = chromium_missing()
pytestmark = pytest.mark.browser

LESSON = "00_start_here.ipynb"
VIEWPORT = {"width": 1400, "height": 1600}
RESULTS: dict = {"latency": {}, "timings": {}, "out_of_view": {}}


# --- what the lesson shows, computed here without a kernel ----------------------------------------
def lesson_trace():
    """The lesson's network and numbers (notebooks/00_start_here.ipynb, first code cell)."""
    import backpropviz as bpv
    x = np.array([1.0, 2.0])
    W1, b1 = np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros(2)
    W2, b2 = np.array([[0.5, -0.5]]), np.zeros(1)
    net = bpv.Sequential([bpv.MM(W1, b1), bpv.ReLU(), bpv.MM(W2, b2), bpv.Sigmoid()],
                         loss=bpv.SquaredLoss())
    return bpv.StepperModel(net, x, np.array([1.0]))


@pytest.fixture(scope="module")
def lesson():
    return lesson_trace()


def counter_at(model, k: int) -> str:
    model.go(k)
    return model.counter()


# --- reporting: a section at the end of the pytest run, and the JSON file ---------------------------
class _Summary:
    def pytest_terminal_summary(self, terminalreporter):
        tr = terminalreporter
        tr.section("backpropviz in the browser")
        if MISSING:
            tr.write_line(f"SKIPPED: {MISSING}")
            return
        for line in summary_lines():
            tr.write_line(line)


def summary_lines() -> list[str]:
    out = []
    for app, t in RESULTS["timings"].items():
        out.append(f"{app}: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    for app, tries in RESULTS.get("run_all", {}).items():
        if tries > 1:
            out.append(f"{app}: Run All issued {tries} times (the first was lost before the "
                       f"kernel was bound)")
    for app, s in RESULTS["latency"].items():
        if s.get("n"):
            out.append(f"{app}: click ▶/◀ → graph updated, {s['n']} clicks: median "
                       f"{s['median_ms']} ms, p90 {s['p90_ms']} ms, max {s['max_ms']} ms")
    for app, steps in RESULTS["out_of_view"].items():
        if steps:
            out.append(f"{app}: highlighted node outside the graph's visible box (the learner "
                       f"must scroll inside it) at steps {steps}")
    for where, px in RESULTS.get("screens", {}).items():
        out.append(f"{where}: every step's node in view beside the equation; smallest graph "
                   f"label {px} px")
    if RESULTS["latency"]:
        out.append(f"figures: {(ARTIFACTS / 'latency.json').relative_to(ROOT)}; screenshots: "
                   f"{ARTIFACTS.relative_to(ROOT)}/*.png")
    return out


@pytest.fixture(scope="module", autouse=True)
def _report_or_skip(request):
    """The summary section at the end of the run; without Chromium, a skip that says why."""
    pm = request.config.pluginmanager
    if not pm.has_plugin("backpropviz-browser-summary"):
        pm.register(_Summary(), "backpropviz-browser-summary")
    if MISSING:
        pytest.skip(MISSING)


def write_latency():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    data = {"what": "time from the learner's click on ▶ or ◀ (click event, in the page) until the "
                    "graph's svg shows the new step (data-step changed, MutationObserver), in ms",
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"), **RESULTS["latency"]}
    (ARTIFACTS / "latency.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))


# --- browser, servers, pages --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.skip(MISSING)
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as e:          # noqa: BLE001
        pw.stop()
        pytest.skip(f"Chromium not installed or not startable: {CHROMIUM}: {e}")
    try:
        yield b
    finally:
        b.close()
        pw.stop()


def open_lab(learner: Learner, server: LabServer, timings: dict):
    L, page = learner, learner.page
    t0 = time.monotonic()
    L.do("open the lesson in JupyterLab", lambda: page.goto(server.url(LESSON)))
    tries = run_all_cells(L.do, page, ready=L.root)
    timings["page to all cells run"] = time.monotonic() - t0
    RESULTS.setdefault("run_all", {})[learner.app] = tries
    L.do("stepper widget shown after Run All", lambda: page.wait_for_selector(
        L.root, timeout=TIMEOUT_MS))


def open_voila(learner: Learner, server: VoilaServer, timings: dict):
    L, page = learner, learner.page
    t0 = time.monotonic()
    L.do("open the lesson in Voilà", lambda: page.goto(server.url(), timeout=TIMEOUT_MS))
    L.do("stepper widget shown in Voilà", lambda: page.wait_for_selector(
        L.root, timeout=TIMEOUT_MS))
    timings["page to widget"] = time.monotonic() - t0


@pytest.fixture(scope="module", params=["lab", "notebook7", "voila"])
def app(request, browser, tmp_path_factory, lesson):
    """One server, one page, the lesson's stepper ready at step −1; stopped whatever happens."""
    return start_app(request, browser, tmp_path_factory, lesson, request.param)


def start_app(request, browser, tmp_path_factory, lesson, name: str) -> Learner:
    """Start the server ``name`` (lab, notebook7, voila) on a copy of the lessons, open the lesson
    and wait for its stepper at step 0 (also used by tests/test_a11y.py)."""
    tmp = tmp_path_factory.mktemp(f"browser-{name}")
    notebooks = copy_notebooks(tmp / "notebooks")
    server = {"lab": LabServer, "notebook7": NotebookServer}.get(name)
    server = server(tmp, notebooks) if server else VoilaServer(tmp, notebooks / LESSON)
    request.addfinalizer(server.stop)
    server.start(cwd=notebooks)
    timings = RESULTS["timings"].setdefault(name, {})
    timings["server ready"] = server.t_ready

    context = browser.new_context(viewport=VIEWPORT)
    request.addfinalizer(context.close)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    root = ".bpv-stepper" if name == "voila" else ".bpv-stepper:not([data-bpv-stale])"
    learner = Learner(page, name, root)
    learner.server = server
    if name != "voila":                 # JupyterLab and Notebook 7 share their front-end parts
        open_lab(learner, server, timings)
    else:
        open_voila(learner, server, timings)
    # the lesson's next cell steps the widget from code, then resets it: wait for that to settle
    learner.wait_for("stepper at the start (step 0, counter 0/14)",
                     "(s, c) => s.step === '0' && s.counter === c", counter_at(lesson, 0))
    scroll_stepper_to_top(learner)
    learner.shot("start" if name == "voila" else "after-run-all")
    return learner


def scroll_stepper_to_top(L: Learner):
    # scrollIntoView without smooth scrolling is done when it returns: nothing to wait for
    L.page.evaluate("(root) => document.querySelector(root).scrollIntoView({block: 'start'})",
                    L.root)


def scroll_graph_to_current(L: Learner):
    """What a learner does when the highlighted node is below the graph's visible box."""
    L.page.evaluate("""(root) => {
        const g = document.querySelector(root + ' .bpv-graph');
        const cur = g && g.querySelector('rect.cur-F, rect.cur-B');
        if (!cur) return;
        const gr = g.getBoundingClientRect(), cr = cur.getBoundingClientRect();
        g.scrollTop += (cr.top + cr.height / 2) - (gr.top + gr.height / 2);
    }""", L.root)          # a scrollTop assignment is synchronous: nothing to wait for


CUR_IN_VIEW_JS = """(root) => {
    const g = document.querySelector(root + ' .bpv-graph');
    const cur = g && g.querySelector('rect.cur-F, rect.cur-B');
    if (!cur) return null;
    const gr = g.getBoundingClientRect(), cr = cur.getBoundingClientRect();
    return cr.top >= gr.top - 1 && cr.bottom <= gr.bottom + 1
        && cr.left >= gr.left - 1 && cr.right <= gr.right + 1;
}"""


def go_to_start(L: Learner, lesson):
    """Untick predict-then-reveal if ticked, and reset to step 0."""
    box = L.page.locator(L.sel(".bpv-predict-toggle input[type=checkbox]"))
    if L.do("read the predict checkbox", lambda: box.is_checked()):
        L.do("untick predict, then reveal", lambda: box.uncheck())
        L.wait_for("prediction box hidden", "(s) => !s.asking")
    if L.read()["step"] != "0":
        L.click("click ⏮ reset", ".bpv-reset")
    L.wait_for("back at step 0", "(s, c) => s.step === '0' && s.counter === c",
               counter_at(lesson, 0))
    scroll_graph_to_top(L)


def scroll_graph_to_top(L: Learner):
    L.page.evaluate("(root) => { const g = document.querySelector(root + ' .bpv-graph');"
                    " if (g) { g.scrollTop = 0; g.scrollLeft = 0; } }", L.root)


def expect(L: Learner, step: str, ok: bool, what: str):
    if not ok:
        L.fail(step, what)


def wait_shown(L: Learner, what: str, **want):
    """Wait until every named part of the page shows what it should (the graph, the counter and
    the equation arrive in separate messages: never read one and assume the others)."""
    L.wait_for(what, "(s, w) => Object.keys(w).every((k) => s[k] === w[k])", want)
    return L.read()


# --- the tests ------------------------------------------------------------------------------------------
def test_walk_forward_and_backward(app, lesson):
    """▶ fourteen times: every click shows the next rule on the graph, counter and equation."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    s = L.read()
    expect(L, "initial state", s["n_cur"] == 0 and s["prev_disabled"] and not s["next_disabled"]
           and s["equation"].startswith(f"step 0/{len(tr)}"),
           f"at step 0 nothing is highlighted, ◀ is disabled, the equation says 'step "
           f"0/{len(tr)}'; shown: {s}")
    out_of_view = []
    for k in range(1, len(tr) + 1):
        name = f"▶ to step {k}/{len(tr)}"
        before = s
        L.click_until_step_changes(name, ".bpv-next")
        spec = tr.specs[k - 1]
        ph = "F" if spec.phase == "forward" else "B"
        s = wait_shown(L, name + ": graph, highlight and counter", step=str(k), node=spec.node,
                       node_phase=ph, counter=counter_at(lesson, k))
        expect(L, name + ": highlight moved",
               (s["module"], s["node"], s["node_phase"]) !=
               (before["module"], before["node"], before["node_phase"]),
               f"the highlight did not move: {before['module']}/{before['node']} → "
               f"{s['module']}/{s['node']}")
        expect(L, name + ": highlighted node", s["node"] == spec.node and s["node_phase"] == ph,
               f"the node written should carry cur-{ph}: {spec.node}; shown: {s['node']} "
               f"(cur-{s['node_phase']})")
        expect(L, name + ": highlighted module",
               s["module"] == spec.module and (spec.module is None or s["module_phase"] == ph),
               f"the module applied should carry cur-{ph}: {spec.module}; shown: {s['module']} "
               f"(cur-{s['module_phase']})")
        expect(L, name + ": one node and at most one module highlighted", s["n_cur"] in (1, 2),
               f"{s['n_cur']} elements carry cur-F/cur-B")
        header = present(tr, k).header
        L.wait_for(name + f": the equation starts with {header!r} and names {spec.tag}",
                   "(s, w) => s.equation.startsWith(w[0]) && s.equation.includes(w[1])",
                   [header, spec.tag])
        L.wait_for(name + ": equation typeset by MathJax",
                   "(s) => s.equation_tex >= 1 && !s.equation_raw_dollars")
        if not L.page.evaluate(CUR_IN_VIEW_JS, L.root):    # graph box not scrolled by anyone
            out_of_view.append(k)
        if k == 3:
            L.shot("mid-forward")
        if k == 9:                          # ∂J/∂W[2] = v zᵀ, the lesson's drawn step
            L.shot("mid-backward-as-shown")
            scroll_graph_to_current(L)
            L.shot("mid-backward")
            scroll_graph_to_top(L)
    expect(L, "end: ▶ disabled", s["next_disabled"] is True,
           "after the last step ▶ should be disabled")
    scroll_graph_to_current(L)
    L.shot("end-of-backward")
    RESULTS["out_of_view"][L.app] = out_of_view
    print(f"\n[{L.app}] walk: highlighted node outside the visible graph box at steps "
          f"{out_of_view or 'none'}")


def test_reset_backward_jump_and_prev(app, lesson):
    """⏮ reset, ⏭ backward pass, ◀: each moves the graph, counter and equation."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    for _ in range(3):
        L.click_until_step_changes("▶ (before reset)", ".bpv-next")
    L.click_until_step_changes("click ⏮ reset", ".bpv-reset")
    s = wait_shown(L, "⏮ reset: step 0", step="0", counter=counter_at(lesson, 0))
    expect(L, "⏮ reset", s["n_cur"] == 0, f"reset should highlight nothing; shown {s}")
    L.click_until_step_changes("click ⏭ backward pass", ".bpv-to-backward")
    nf = tr.n_forward
    wait_shown(L, f"⏭ backward pass: step {nf + 1}, ∂J/∂u[{nf}] = 1", step=str(nf + 1),
               node=tr.specs[nf].node, node_phase="B", counter=counter_at(lesson, nf + 1))
    scroll_graph_to_current(L)
    L.shot("jump-to-backward")
    L.click_until_step_changes("click ◀ (back into the forward pass)", ".bpv-prev")
    wait_shown(L, f"◀: step {nf} in the forward pass", step=str(nf), node_phase="F",
               counter=counter_at(lesson, nf))
    go_to_start(L, lesson)


# each element of the drawing the scene sets: its class, or a row's (a hover text's) text and
# number of child elements
DOM_SCENE_JS = r"""(root) => {
  const svg = document.querySelector(root + ' .bpv-graph svg');
  const out = {};
  for (const e of svg.querySelectorAll('[data-id]')) {
    const id = e.getAttribute('data-id');
    out[id] = id.includes('.') ? [e.textContent, e.childElementCount] : [e.getAttribute('class'), 0];
  }
  return { step: svg.getAttribute('data-step'), scene: out };
}"""


def renderer_scene(trace, k: int) -> dict:
    """The same read of the renderer's SVG for step k (what the exports draw)."""
    import xml.etree.ElementTree as ET
    from backpropviz.display.draw import renderer
    root = ET.fromstring(renderer(trace).svg(k, caption=False, fit=False))
    return {e.get("data-id"): (["".join(e.itertext()), len(list(e))] if "." in e.get("data-id")
                               else [e.get("class"), 0])
            for e in root.iter() if e.get("data-id")}


def test_the_page_draws_what_the_renderer_draws(app, lesson):
    """After steps that arrive as changed scene entries only (forward, backward, a jump back),
    the widget's drawing is element for element the renderer's SVG of that step."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    checked = []
    plan = [(k, ".bpv-next") for k in (1, 2, 3)] + [
        (tr.n_forward + 1, ".bpv-to-backward"), (tr.n_forward + 2, ".bpv-next"),
        (tr.n_forward + 1, ".bpv-prev")]
    for target, how in plan:
        L.click_until_step_changes(f"{how} to step {target}", how)
        wait_shown(L, f"step {target}", step=str(target))
        if target in (1, 2):
            continue
        got = L.page.evaluate(DOM_SCENE_JS, L.root)
        want = renderer_scene(tr, target)
        diff = sorted(i for i in set(want) | set(got["scene"]) if want.get(i) != got["scene"].get(i))
        expect(L, f"step {target}: the page's drawing is the renderer's",
               got["step"] == str(target) and len(want) > 20 and not diff,
               f"{len(diff)} elements differ, e.g. " + "; ".join(
                   f"{i}: page {got['scene'].get(i)!r} / renderer {want.get(i)!r}" for i in diff[:3]))
        checked.append(target)
    print(f"\n[{L.app}] the page's drawing equals the renderer's SVG at steps {checked} "
          f"({len(want)} elements each)")
    go_to_start(L, lesson)


def test_predict_then_reveal(app, lesson):
    """Tick the box, step to the first gradient to predict, answer wrong (✘ hint), then right (✔)."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    box = L.page.locator(L.sel(".bpv-predict-toggle input[type=checkbox]"))
    L.do("tick 'predict, then reveal'", lambda: box.check())
    k = next(j for j in range(1, len(tr) + 1) if lesson.needs_prediction(j))   # first such step
    spec = tr.specs[k - 1]
    lhs = key_text(spec.writes)
    for j in range(1, k):
        s = L.click_until_step_changes(f"predict mode: ▶ to step {j}", ".bpv-next")
    L.wait_for(f"asked to predict {lhs}", "(s, want) => s.asking && s.prompt.includes(want)",
               lhs)
    s = L.read()
    expect(L, "prediction prompt", s["step"] == str(k - 1),
           f"the prompt for step {k} should come at step {k - 1}; shown {s}")

    L.click("▶ without a prediction", ".bpv-next")
    L.wait_for("▶ refused: 'Type your prediction first'",
               "(s) => s.message.includes('prediction first')")
    expect(L, "▶ refused", L.read()["step"] == str(k - 1), "▶ moved on without a prediction")

    want = np.asarray(tr[spec.writes], dtype=float)
    wrong = json.dumps(np.stack([want.ravel(), want.ravel()]).tolist())       # wrong shape
    L.type_answer("type a wrong-shape answer", wrong)
    L.click("check the wrong answer", ".bpv-check")
    L.wait_for("✘ feedback for the wrong answer",
               "(s) => s.feedback.includes('✘') && s.feedback.includes('shape')")
    s = L.read()
    hint = s["feedback"]
    expect(L, "wrong answer keeps the step", s["step"] == str(k - 1),
           f"a wrong answer must not advance; shown {s['step']}")
    L.shot("prediction-wrong")

    right = json.dumps(want.tolist())           # from backpropviz on the lesson's numbers
    L.type_answer("type the right answer", right)
    L.click("check the right answer", ".bpv-check")
    L.wait_for("✔ feedback and the step shown",
               "(s, k) => s.feedback.includes('✔') && s.step === k", str(k))
    s = wait_shown(L, "right answer: graph, counter and the next question",
                   node=spec.node, node_phase="B", counter=counter_at(lesson, k),
                   asking=lesson.needs_prediction(k + 1))
    scroll_graph_to_current(L)
    L.shot("prediction-right")
    print(f"\n[{L.app}] predicted {lhs}: wrong {wrong} → {hint!r}; right {right} → "
          f"{s['feedback']!r}")
    go_to_start(L, lesson)


def test_click_to_graph_latency(app, lesson, record_property):
    """15 clicks (▶ ×14 through both passes, ◀ ×1): click → new data-step on the svg, in the page."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    L.latencies.clear()
    for k in range(1, len(tr) + 1):
        L.click_until_step_changes(f"latency: ▶ to step {k}", ".bpv-next")
    L.click_until_step_changes("latency: ◀", ".bpv-prev")
    summary = latency_summary(L.latencies)
    wall = latency_summary(L.wall)
    summary["from_python_ms"] = {k: wall[k] for k in ("median_ms", "p90_ms", "max_ms")}
    summary["from_python_note"] = ("the same clicks timed from Python: Playwright's click() "
                                   "call until its poll sees the new step (adds its overhead)")
    RESULTS["latency"][L.app] = summary
    write_latency()
    record_property(f"latency_{L.app}_ms", json.dumps(summary))
    print(f"\n[{L.app}] click → graph updated over {summary['n']} clicks: median "
          f"{summary['median_ms']} ms, p90 {summary['p90_ms']} ms, max {summary['max_ms']} ms "
          f"(from Python, with Playwright's overhead: median {wall['median_ms']} ms)")
    go_to_start(L, lesson)
    assert summary["n"] == len(tr) + 1


# --- every lesson in Voilà -------------------------------------------------------------------------
ALL_LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module")
def voila_dir(browser, tmp_path_factory):
    """One Voilà server for the whole notebooks folder (a teacher's ./dev voila)."""
    tmp = tmp_path_factory.mktemp("browser-voila-all")
    notebooks = copy_notebooks(tmp / "notebooks")
    server = VoilaServer(tmp, notebooks)
    server.start(cwd=notebooks)
    yield server
    server.stop()


@pytest.mark.parametrize("name", ALL_LESSONS)
def test_every_lesson_opens_in_voila(browser, voila_dir, name):
    """Each lesson renders in Voilà: every output arrives, none is an error or a traceback,
    and a lesson with a Stepper shows a live one."""
    book = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    with_output = sum(1 for c in book.cells if c.cell_type == "code" and c.get("outputs"))
    has_stepper = any("bpv.Stepper(" in c.source for c in book.cells if c.cell_type == "code")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        L = Learner(page, "voila-" + name.split("_")[0], ".bpv-stepper")
        url = f"{voila_dir.base}/voila/render/{name}?token={voila_dir.token}"
        L.do(f"open {name} in Voilà", lambda: page.goto(url, timeout=TIMEOUT_MS))
        L.do(f"{name}: every cell's output shown ({with_output} cells with output)",
             lambda: page.wait_for_function(
                 "(n) => document.querySelectorAll('.jp-Cell-outputWrapper .jp-OutputArea-child,"
                 " .jp-OutputArea-child').length >= n", arg=with_output, timeout=TIMEOUT_MS,
                 polling=100))
        if has_stepper:
            L.do(f"{name}: a live Stepper", lambda: page.wait_for_selector(
                ".bpv-stepper .bpv-graph svg", timeout=TIMEOUT_MS))
        errors = page.evaluate("""() => [...document.querySelectorAll(
            "[data-mime-type='application/vnd.jupyter.stderr'], .jp-RenderedText[data-mime-type*='error']")]
            .map(e => e.innerText.slice(0, 200))""")
        text = page.evaluate("() => document.body.innerText")
        L.shot("lesson")
        expect(L, f"{name}: no error output", not errors and "Traceback" not in text,
               f"error output in Voilà: {errors[:2]} {'Traceback' if 'Traceback' in text else ''}")
    finally:
        context.close()


def test_flipbook_steps_in_the_browser(browser, tmp_path):
    """The offline flipbook: ▶ shows each step's highlights, caption and equations from its data."""
    import backpropviz as bpv
    from backpropviz.display import draw
    mm = bpv.MM(np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -0.1]),
                name="</script><b>x</b>")
    tr = bpv.trace(lambda z: ((mm(z) + z) ** 2).sum(), np.array([1.0, 0.5]))
    path = tmp_path / "flipbook.html"
    path.write_text(draw.renderer(tr).flipbook("</script> flipbook"), encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        for k in range(1, len(tr) + 1):
            page.click("#next")
            page.wait_for_function("(k) => document.getElementById('counter').textContent"
                                   " === 'step ' + k + '/' + " + str(len(tr)), arg=k)
            hl = bpv.present(tr, k).highlight
            shown = page.evaluate("""() => ({
                wrote: [...document.querySelectorAll('rect.cur-F, rect.cur-B')].map(r => r.dataset.box),
                read: [...document.querySelectorAll('rect.read')].map(r => r.dataset.box).sort(),
                eq: document.getElementById('eq').textContent })""")
            assert shown["wrote"] == [hl.wrote], (k, shown)
            assert shown["read"] == sorted(hl.read - {hl.wrote}), (k, shown)
            assert shown["eq"] == "\n".join(bpv.present(tr, k).lines)
        assert not errors and page.evaluate("() => document.querySelectorAll('b').length") == 0
    finally:
        context.close()


def test_granularity_switch_and_expand_in_the_browser(app, lesson):
    """modules → scalar circuit, one step, back to modules; then expand M_1 in place and close it."""
    L = app
    go_to_start(L, lesson)
    ref = lesson_trace()                       # the same pass, switched here without a kernel
    module_graph = L.page.evaluate(
        "(root) => document.querySelector(root + ' .bpv-graph').innerHTML.length", L.root)
    assert ref.set_granularity("scalar circuit")
    c_counter0 = ref.counter()
    L.do("choose 'scalar circuit' in the view menu", lambda: L.page.locator(
        L.sel("select.bpv-granularity")).select_option("scalar circuit"))
    L.wait_for(f"circuit counter {c_counter0!r} and a data-node of the circuit",
               "(s, w) => s.counter === w && s.step === '0'", c_counter0)
    L.do("the graph shows scalar nodes (u[1]₁)", lambda: L.page.wait_for_selector(
        L.sel(".bpv-graph [data-node='u[1]₁']"), state="attached"))
    changed = L.page.evaluate(
        "(root) => document.querySelector(root + ' .bpv-graph').innerHTML.length", L.root)
    expect(L, "the circuit's graph differs", changed != module_graph, "same graph shown")
    L.shot("scalar-circuit")
    ref.next()
    first = len(L.latencies)
    L.click_until_step_changes("▶ in the circuit", ".bpv-next")
    L.wait_for("circuit step 1", "(s, w) => s.counter === w && s.step === '1'", ref.counter())
    for k in range(2, 16):                      # click → graph in the circuit view, timed
        ref.next()
        L.click_until_step_changes(f"▶ in the circuit to step {k}", ".bpv-next")
        L.wait_for(f"circuit step {k}", "(s, w) => s.counter === w", ref.counter())
    got = L.page.evaluate(DOM_SCENE_JS, L.root)           # a switched graph, then 15 steps
    want = renderer_scene(ref.trace, ref.step)
    diff = sorted(i for i in set(want) | set(got["scene"]) if want.get(i) != got["scene"].get(i))
    expect(L, "the circuit in the page is the renderer's", not diff and len(want) > 100,
           f"{len(diff)} of {len(want)} elements differ, e.g. {diff[:3]}")
    summary = latency_summary(L.latencies[first:])
    RESULTS["latency"][L.app + " (scalar circuit)"] = summary
    write_latency()
    print(f"\n[{L.app}] scalar circuit view: click → graph updated over {summary['n']} clicks: "
          f"median {summary['median_ms']} ms, p90 {summary['p90_ms']} ms")
    assert ref.set_granularity("modules")
    L.do("choose 'modules' in the view menu", lambda: L.page.locator(
        L.sel("select.bpv-granularity")).select_option("modules"))
    L.wait_for("module counter again", "(s, w) => s.counter === w", ref.counter())
    L.shot("back-to-modules")
    label = f"M_1 = {ref.module_trace.modules[0].label}"
    assert ref.set_expanded("M_1")
    L.do(f"choose {label!r} in the expand dropdown", lambda: L.page.locator(
        L.sel("select.bpv-expand")).select_option(label=label))
    L.wait_for("expanded counter", "(s, w) => s.counter === w", ref.counter())
    L.do("the graph shows an expanded node (u[1]₁)", lambda: L.page.wait_for_selector(
        L.sel(".bpv-graph [data-node='u[1]₁']"), state="attached"))
    L.shot("expanded-M_1")
    assert ref.set_expanded(None)
    L.do("choose 'none' again", lambda: L.page.locator(
        L.sel("select.bpv-expand")).select_option(label="none"))
    L.wait_for("module counter after closing", "(s, w) => s.counter === w", ref.counter())
    L.do("no expanded node left", lambda: L.page.wait_for_selector(
        L.sel(".bpv-graph [data-node='u[1]₁']"), state="detached"))
    expect(L, "no error message", "Traceback" not in (L.read()["message"] or ""), "traceback")
    L.shot("expand-closed")


# --- the screens a class uses: laptops and projectors -----------------------------------------------
CLASSROOM_SCREENS = [(1280, 720), (1024, 768)]
MIN_LABEL_PX = 11.0

# Where the step is on screen, measured in the page: the written node inside the graph's panel and
# inside the part of the window that the notebook (or Voilà's page) shows, the equation in view
# too, and the smallest rendered size of the graph's text (font-size × the drawing's scale).
SCREEN_JS = r"""(root) => {
  const R = document.querySelector(root);
  const g = R.querySelector('.bpv-graph'), svg = g && g.querySelector('svg[data-step]');
  const cur = svg && svg.querySelector('rect.cur-F, rect.cur-B');
  const eq = R.querySelector('.bpv-equation'), nav = R.querySelector('.bpv-next');
  if (!svg || !cur || !eq || !nav) return null;
  let top = 0, bottom = innerHeight, left = 0, right = innerWidth;
  const sc = R.closest('.jp-WindowedPanel-outer');
  if (sc) { const r = sc.getBoundingClientRect(); top = Math.max(top, r.top);
            bottom = Math.min(bottom, r.bottom); left = Math.max(left, r.left);
            right = Math.min(right, r.right); }
  const gr = g.getBoundingClientRect();
  const box = { top: gr.top + g.clientTop, left: gr.left + g.clientLeft };
  box.bottom = box.top + g.clientHeight; box.right = box.left + g.clientWidth;
  const c = cur.getBoundingClientRect(), e = eq.getBoundingClientRect(),
        n = nav.getBoundingClientRect();
  const inside = (a, b) => a.top >= b.top - 1 && a.bottom <= b.bottom + 1
                           && a.left >= b.left - 1 && a.right <= b.right + 1;
  const view = { top, bottom, left, right };
  let minPx = Infinity, minText = null;
  for (const t of svg.querySelectorAll('text')) {
    const bb = t.getBBox();
    if (!bb.height || !t.textContent.trim()) continue;
    const px = parseFloat(getComputedStyle(t).fontSize) * t.getBoundingClientRect().height / bb.height;
    if (px < minPx) { minPx = px; minText = t.textContent.trim().slice(0, 30); }
  }
  return { step: svg.getAttribute('data-step'), node_in_panel: inside(c, box),
           node_in_view: inside(c, view), equation_in_view: inside(e, view),
           controls_in_view: inside(n, view), min_label_px: Math.round(minPx * 100) / 100,
           min_label: minText, graph_top: Math.round(gr.top), graph_h: Math.round(gr.height),
           graph_below_top: Math.round(gr.top - R.getBoundingClientRect().top),
           play_at: (() => { const p = R.querySelector('.bpv-play'), r = R.getBoundingClientRect();
                             if (!p) return null; const b = p.getBoundingClientRect();
                             return [Math.round(b.left - r.left), Math.round(b.top - r.top)]; })(),
           node: [Math.round(c.top), Math.round(c.bottom), Math.round(c.left), Math.round(c.right)],
           panel: [Math.round(box.top), Math.round(box.bottom), Math.round(box.left),
                   Math.round(box.right)],
           view: [Math.round(top), Math.round(bottom)] };
}"""


@pytest.mark.parametrize("screen", CLASSROOM_SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_classroom_screen_keeps_the_step_in_view(app, lesson, screen):
    """At 1280×720 (a laptop) and 1024×768 (a projector), from the page scrolled to its top:
    after every ▶ the node the step writes is inside the graph's panel and on screen, together
    with the equation and the controls; the graph's labels render at ≥ 11 px; the graph does not
    move when the equation's height changes."""
    L, tr = app, lesson.trace
    w, h = screen
    L.page.set_viewport_size({"width": w, "height": h})
    try:
        go_to_start(L, lesson)
        # the page as it opens, at its top: nothing scrolls the Stepper into place for the
        # learner (a click scrolls only what it must to reach ▶, as in a browser)
        L.page.evaluate("(root) => { const r = document.querySelector(root);"
                        " const sc = r.closest('.jp-WindowedPanel-outer');"
                        " if (sc) sc.scrollTop = 0; window.scrollTo(0, 0); }", L.root)
        seen = []
        for k in range(1, len(tr) + 1):
            name = f"{w}×{h}: ▶ to step {k}"
            L.click_until_step_changes(name, ".bpv-next")
            wait_shown(L, name + ": graph shows the step", step=str(k))
            try:                   # the panel scrolls to the node after the drawing arrives
                L.page.wait_for_function(
                    f"(root) => {{ const s = ({SCREEN_JS})(root); return s && s.step === '{k}'"
                    " && s.node_in_panel && s.node_in_view && s.equation_in_view"
                    " && s.controls_in_view; }", arg=L.root, timeout=10_000, polling=50)
            except Exception:      # noqa: BLE001 — say what is out of view
                pass
            s = L.page.evaluate(SCREEN_JS, L.root)
            seen.append(s)
            expect(L, name + ": written node in the graph's panel and on screen, beside the "
                   "equation and the controls",
                   s["node_in_panel"] and s["node_in_view"] and s["equation_in_view"]
                   and s["controls_in_view"], f"measured: {s}")
            expect(L, name + f": labels ≥ {MIN_LABEL_PX} px",
                   s["min_label_px"] >= MIN_LABEL_PX, f"measured: {s}")
            if k == 9:
                L.shot(f"classroom-{w}x{h}-step9")
        tops = {s["graph_below_top"] for s in seen}       # in the Stepper (the page may scroll)
        plays = {tuple(s["play_at"]) for s in seen}
        expect(L, f"{w}×{h}: the controls do not move while stepping", len(plays) == 1,
               f"the play button at {sorted(plays)} (x, y in the Stepper) over the steps")
        expect(L, f"{w}×{h}: the graph stays put while the equation changes",
               max(tops) - min(tops) <= 1, f"graph top at {sorted(tops)} px over the steps")
        px = min(s["min_label_px"] for s in seen)
        RESULTS.setdefault("screens", {})[f"{L.app} {w}×{h}"] = px
        print(f"\n[{L.app}] {w}×{h}: every step's node in view beside the equation; smallest "
              f"label {px} px ({seen[0]['min_label']!r}); graph panel {seen[0]['graph_h']} px "
              f"high at y={seen[0]['graph_top']}")
    finally:
        L.page.set_viewport_size(VIEWPORT)
        go_to_start(L, lesson)


@pytest.mark.parametrize("screen", [(1280, 720), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_projector_mode_makes_the_step_readable_from_the_back(app, lesson, screen):
    """One switch: every label of the graph and the equation's text at least 3 % of the
    window's height (a slide's 24-pt rule is ~4 %), the step's node still in view."""
    L, tr = app, lesson.trace
    w, h = screen
    L.page.set_viewport_size({"width": w, "height": h})
    try:
        go_to_start(L, lesson)
        L.click("projector on", ".bpv-projector")
        L.do("the drawing grows", lambda: L.page.wait_for_function(
            "(root) => { const s = document.querySelector(root + ' .bpv-graph svg');"
            " return s && Number(s.getAttribute('width')) > 1.5 * s.viewBox.baseVal.width; }",
            arg=L.root, timeout=TIMEOUT_MS, polling=50))
        for k in range(1, 10):
            L.click_until_step_changes(f"projector: ▶ to step {k}", ".bpv-next")
        wait_shown(L, "projector: step 9", step="9")
        try:
            L.page.wait_for_function(f"(root) => {{ const s = ({SCREEN_JS})(root); return s &&"
                                     " s.node_in_panel && s.node_in_view; }", arg=L.root,
                                     timeout=10_000, polling=50)
        except Exception:          # noqa: BLE001 — reported below
            pass
        s = L.page.evaluate(SCREEN_JS, L.root)
        eq_px = L.page.evaluate("(root) => parseFloat(getComputedStyle(document.querySelector("
                                "root + ' .bpv-eq-box')).fontSize)", L.root)
        L.shot(f"projector-{w}x{h}-step9")
        expect(L, f"{w}×{h} projector: graph labels ≥ 3 % of the height",
               s["min_label_px"] >= 0.03 * h - 0.5, f"measured: {s}")
        expect(L, f"{w}×{h} projector: equation text ≥ 3 % of the height",
               eq_px >= 0.03 * h - 0.5, f"equation font {eq_px} px")
        expect(L, f"{w}×{h} projector: the step's node in the panel and on screen",
               s["node_in_panel"] and s["node_in_view"], f"measured: {s}")
        RESULTS.setdefault("projector", {})[f"{L.app} {w}×{h}"] = (s["min_label_px"], eq_px)
        print(f"\n[{L.app}] projector {w}×{h}: smallest graph label {s['min_label_px']} px, "
              f"equation {eq_px} px ({100 * s['min_label_px'] / h:.1f} % / "
              f"{100 * eq_px / h:.1f} % of the height); node in view")
    finally:
        L.click("projector off", ".bpv-projector")
        L.page.set_viewport_size(VIEWPORT)
        go_to_start(L, lesson)


def test_saved_lesson_shows_pictures_before_run_all(browser, tmp_path):
    """A lesson opened in JupyterLab before Run All (no kernel output yet, not trusted): the
    Stepper's cell and the drawn steps show pictures that fit their output, not their text run
    together."""
    book = nbformat.read(ROOT / "notebooks" / LESSON, as_version=4)
    pictures = sum(1 for c in book.cells for o in c.get("outputs", [])
                   if "data:image/svg+xml;base64," in o.get("data", {}).get("text/html", ""))
    assert pictures >= 2, "the saved lesson should hold the Stepper's and a step's picture"
    notebooks = copy_notebooks(tmp_path / "notebooks")
    server = LabServer(tmp_path, notebooks).start(cwd=notebooks)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        L = Learner(page, "lab-saved", ".bpv-stepper")
        L.do("open the saved lesson", lambda: page.goto(server.url(LESSON)))
        L.do("cells shown", lambda: page.wait_for_selector(".jp-NotebookPanel .jp-Cell"))
        L.do("the Stepper's saved picture", lambda: page.wait_for_selector(
            ".bpv-static img", state="attached"))
        seen = []
        for i in range(pictures):          # the notebook renders cells as they scroll into view
            L.do(f"picture {i + 1} of {pictures} rendered", lambda: page.wait_for_function(
                """(n) => {
                  const imgs = [...document.querySelectorAll('.jp-OutputArea-output img')]
                    .filter(i => i.src.startsWith('data:image/svg+xml'));
                  if (imgs.length <= n) {
                    const sc = document.querySelector('.jp-WindowedPanel-outer');
                    if (sc) sc.scrollTop += 400;
                    return false; }
                  const img = imgs[n];
                  img.scrollIntoView({block: 'center'});
                  return img.complete && img.naturalWidth > 0; }""", arg=i, polling=200))
            seen.append(page.evaluate("""(n) => {
                const img = [...document.querySelectorAll('.jp-OutputArea-output img')]
                    .filter(i => i.src.startsWith('data:image/svg+xml'))[n];
                const out = img.closest('.jp-OutputArea-output');
                return { alt: img.alt.split('\\n')[0], w: img.getBoundingClientRect().width,
                         out: out.getBoundingClientRect().width,
                         text: out.innerText.slice(0, 80) }; }""", i))
            if i == 0:
                L.shot("saved-stepper-picture")
        for s in seen:
            assert s["alt"].startswith("step ") and 0 < s["w"] <= s["out"] + 1, s
        print(f"\n[lab, saved lesson] {len(seen)} pictures before Run All: "
              + "; ".join(f"{s['alt']!r} {s['w']:.0f}/{s['out']:.0f} px" for s in seen))
    finally:
        context.close()
        server.stop()


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_run_all_gets_past_a_select_kernel_dialog(browser, tmp_path, app):
    """The shared Run All helper on a notebook whose kernel JupyterLab cannot start by itself
    (an unknown kernelspec: it asks "Select Kernel", as it did on a busy machine): the helper
    accepts the default kernel, as a learner would, and every cell runs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "no-such-kernel", "display_name": "gone",
                                  "language": "python"}}
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7"),
                nbformat.v4.new_code_cell("print('answer', x)")]
    nbformat.write(nb, tmp_path / "dialog.ipynb")
    server = (LabServer if app == "lab" else NotebookServer)(tmp_path, tmp_path)
    server.start(cwd=tmp_path)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        L = Learner(page, f"{app}-dialog")
        L.do("open the notebook", lambda: page.goto(server.url("dialog.ipynb")))
        L.do("the Select Kernel dialog", lambda: page.wait_for_selector(".jp-Dialog"))
        run_all_cells(L.do, page, ready=".jp-OutputArea-output")
        text = page.locator(".jp-OutputArea-output").last.inner_text()
        assert "answer 42" in text, text
    finally:
        context.close()
        server.stop()

