"""The Stepper for every learner: keyboard, screen reader, axe-core (JupyterLab and Voilà).

In headless Chromium, on the lesson 00_start_here (servers and pages as in test_browser.py):

* keys: ← → step, Home / End jump, pressed on a focused Stepper button; the counter changes and
  JupyterLab's active cell does not (the keys stay inside the widget); a visible focus ring;
* axe-core (axe-playwright-python, which bundles axe.min.js) inside the widget: no serious or
  critical violation;
* the accessibility tree (Playwright's ARIA snapshot of the widget): every control has a name;
  toggles say whether they are pressed; the counter and the step's equation are live regions;
* the graph's SVG is an image whose title is the step's header and whose description is the
  step's text.

Run: ``.venv/bin/python -m pytest tests/test_a11y.py -q -s -p no:cacheprovider``.
"""
from __future__ import annotations

import json
import re

import pytest

from backpropviz.display.presentation import present
from browser_util import ARTIFACTS, TIMEOUT_MS, Learner
from test_browser import (MISSING, browser, counter_at, expect, go_to_start,  # noqa: F401
                          lesson, start_app, wait_shown)

pytestmark = pytest.mark.browser

CONTROL_ROLES = ("button", "slider", "checkbox", "textbox", "combobox", "spinbutton", "radio",
                 "switch", "link", "listbox")


@pytest.fixture(scope="module", params=["lab", "voila"])
def app(request, browser, tmp_path_factory, lesson):  # noqa: F811
    if MISSING:
        pytest.skip(MISSING)
    return start_app(request, browser, tmp_path_factory, lesson, request.param)


def active_cell(L: Learner):
    """The index of JupyterLab's active cell (None in Voilà)."""
    return L.page.evaluate("""() => {
        const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Cell')];
        const i = cells.findIndex(c => c.classList.contains('jp-mod-active'));
        return cells.length ? i : null; }""")


def focused(L: Learner) -> dict:
    return L.page.evaluate("""(root) => {
        const a = document.activeElement, r = document.querySelector(root);
        const st = getComputedStyle(a);
        return { inside: !!r && r.contains(a), cls: a.className, tag: a.tagName,
                 outline: st.outlineStyle, outline_px: parseFloat(st.outlineWidth) || 0,
                 colour: st.outlineColor }; }""", L.root)


def test_keys_step_inside_the_widget(app, lesson):
    """Focus ▶, then → → ← End Home: each key moves the stepper and nothing else."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    L.do("focus the ▶ button", lambda: L.page.locator(L.sel(".bpv-next")).focus())
    cell = active_cell(L)
    for key, k in [("ArrowRight", 1), ("ArrowRight", 2), ("ArrowLeft", 1), ("End", len(tr)),
                   ("Home", 0)]:
        L.do(f"press {key}", lambda: L.page.keyboard.press(key))
        wait_shown(L, f"{key}: step {k}", step=str(k), counter=counter_at(lesson, k))
        # the widget hands the focus on in the next frame when the pressed button becomes
        # disabled (▶ at the end, ◀ at the start): wait for that frame, not for a fixed time
        try:
            L.page.wait_for_function("(root) => { const r = document.querySelector(root);"
                                     " return !!r && r.contains(document.activeElement); }",
                                     arg=L.root, timeout=5_000, polling="raf")
        except Exception:           # noqa: BLE001 — reported with what has the focus below
            pass
        f = focused(L)
        expect(L, f"{key}: focus stays in the stepper", f["inside"], f"focus went to {f}")
        expect(L, f"{key}: JupyterLab's active cell unchanged", active_cell(L) == cell,
               f"active cell {cell} → {active_cell(L)}")
    f = focused(L)
    expect(L, "a visible focus ring", f["outline"] != "none" and f["outline_px"] >= 2,
           f"focused {f}")
    L.shot("keyboard-focus-ring")
    print(f"\n[{L.app}] keys → → ← End Home moved the stepper 1, 2, 1, {len(tr)}, 0; active "
          f"cell stayed {cell}; focus ring {f['outline']} {f['outline_px']} px {f['colour']}")
    go_to_start(L, lesson)


def test_axe_finds_no_serious_violation_in_the_widget(app, lesson):
    """axe-core on the widget, at step 0, at a backward step with the inspector's heatmap, and
    in predict mode: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    axe = Axe()
    report = {}

    def check(where: str):
        res = L.do(f"axe at {where}", lambda: axe.run(
            L.page, context={"include": [[L.root]]},
            options={"resultTypes": ["violations"]}))
        found = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                  "nodes": [n["target"] for n in v["nodes"]][:4]}
                 for v in res.response["violations"]]
        report[where] = found
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        expect(L, f"axe at {where}: no serious or critical violation", not bad,
               json.dumps(bad, ensure_ascii=False)[:1500])

    check("step 0")
    for k in range(1, 10):
        L.click_until_step_changes(f"▶ to step {k}", ".bpv-next")
    wait_shown(L, "step 9", step="9")
    check("step 9 (heatmap shown)")
    box = L.page.locator(L.sel(".bpv-predict-toggle input[type=checkbox]"))
    L.click("reset", ".bpv-reset")
    wait_shown(L, "step 0", step="0")
    L.do("tick predict, then reveal", lambda: box.check())
    L.do("go to the first prediction", lambda: L.page.locator(L.sel(".bpv-to-backward")).click())
    L.wait_for("asked to predict", "(s) => s.asking")
    check("predict mode")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{L.app}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\n[{L.app}] axe-core violations inside the widget: " + "; ".join(
        f"{w}: " + (", ".join(f"{v['id']} ({v['impact']})" for v in vs) or "none")
        for w, vs in report.items()))
    go_to_start(L, lesson)


def test_every_control_has_a_name_and_the_svg_says_the_step(app, lesson):
    """The ARIA snapshot of the widget: a name for every control, pressed states for toggles;
    live regions for the counter, equation and feedback; the SVG's title and description are
    the step's header and text."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    for k in range(1, 4):
        L.click_until_step_changes(f"▶ to step {k}", ".bpv-next")
    wait_shown(L, "step 3", step="3")
    snap = L.do("ARIA snapshot of the stepper",
                lambda: L.page.locator(L.root).first.aria_snapshot())
    (ARTIFACTS / f"aria-{L.app}.yaml").write_text(snap)
    controls, unnamed = [], []
    for line in snap.splitlines():
        m = re.match(r'\s*- (\w+)(?: "((?:[^"\\]|\\.)*)")?', line)
        if m and m.group(1) in CONTROL_ROLES:
            controls.append(line.strip())
            if not (m.group(2) or "").strip():
                unnamed.append(line.strip())
    expect(L, "every control has a name", controls and not unnamed,
           f"without a name: {unnamed}; all: {controls}")
    for name in ("play", "repeat", "projector"):
        expect(L, f"the {name} button is named", any(f'button "{name}' in c for c in controls),
               f"controls: {controls}")
    expect(L, "the slider is named 'step'", any(c.startswith('- slider "step') for c in controls),
           f"controls: {controls}")
    state = L.page.evaluate("""(root) => {
        const r = document.querySelector(root);
        const a = (s, k) => { const e = r.querySelector(s); return e && e.getAttribute(k); };
        const svg = r.querySelector('.bpv-graph svg');
        const ids = (svg.getAttribute('aria-labelledby') || '').split(' ');
        const live = r.querySelector('.bpv-graph-view [aria-live]');
        return { live: [a('.bpv-counter', 'aria-live'), live && live.getAttribute('aria-live')],
                 said: live && live.textContent,
                 toggles: [...r.querySelectorAll('.bpv-play, .bpv-repeat, .bpv-projector')]
                          .map(b => [b.getAttribute('aria-label'),
                                     b.getAttribute('aria-pressed')]),
                 role: svg.getAttribute('role'),
                 title: svg.querySelector('title').textContent,
                 desc: svg.querySelector('desc').textContent,
                 labelled: ids.map(i => { const e = document.getElementById(i);
                                          return e && e.textContent; }) }; }""", L.root)
    expect(L, "the counter and the step's equation are polite live regions",
           state["live"] == ["polite"] * 2 and state["said"] == present(tr, 3).header + " = "
           + present(tr, 3).result, f"aria-live: {state['live']}, says {state['said']!r}")
    expect(L, "toggles have a pressed state",
           len(state["toggles"]) == 3 and all(p in ("true", "false") for _, p in state["toggles"]),
           f"toggles: {state['toggles']}")
    view = present(tr, 3)
    expect(L, "the SVG is an image titled by the step",
           state["role"] == "img" and state["title"] == view.header
           and state["labelled"][0] == view.header,
           f"role {state['role']}, title {state['title']!r}, want {view.header!r}")
    expect(L, "the SVG's description is the step's text",
           state["desc"] == "\n".join(view.lines[1:]) and state["labelled"][1] == state["desc"],
           f"desc {state['desc']!r}, want {chr(10).join(view.lines[1:])!r}")
    print(f"\n[{L.app}] {len(controls)} controls, all named: " + "; ".join(controls))
    print(f"[{L.app}] pressed states: {state['toggles']}; SVG title {state['title']!r}")
    go_to_start(L, lesson)


def test_hover_and_click_a_node(app, lesson):
    """Hovering a node shows its value, gradient and the rule that wrote it (as known at this
    step); clicking it opens it in the inspector and stops following the step."""
    L, tr = app, lesson.trace
    go_to_start(L, lesson)
    for k in range(1, 3):
        L.click_until_step_changes(f"▶ to step {k}", ".bpv-next")
    wait_shown(L, "step 2", step="2")
    tip = L.page.evaluate("""(root) => { const g = document.querySelector(root +
        ' .bpv-graph g.node[data-node="u[1]"]'); const t = g && g.querySelector('title');
        return t ? t.textContent : null; }""", L.root)
    expect(L, "u[1]'s hover text: its value, the rule that wrote it, no gradient yet",
           tip is not None and tip.startswith("u[1] = [") and "written at step 1, (F)" in tip
           and tip.endswith("∂J/∂u[1]: not yet computed"), f"title: {tip!r}")
    box = L.page.locator(L.sel('.bpv-graph g.node[data-node="W[1]"] rect')).first
    L.do("click the box of W[1]", lambda: box.click())
    L.do("the inspector shows W[1] and stops following", lambda: L.page.wait_for_function(
        """(root) => { const r = document.querySelector(root);
           const sel = r.querySelector('.bpv-inspect select');
           const info = r.querySelector('.bpv-node-info');
           const follow = r.querySelector('.bpv-follow input');
           return !!sel && sel.options[sel.selectedIndex].textContent === 'W[1]'
             && !!info && /^W\\[1\\]/.test(info.innerText.trim()) && !!follow && !follow.checked;
        }""", arg=L.root, timeout=60_000, polling=50))
    L.do("tick 'follow the current step' again", lambda: L.page.locator(
        L.sel(".bpv-follow input")).check())


def test_a_refused_field_is_marked_and_named_next_to_the_form(app, lesson):
    """A field the rebuild cannot read: outlined in red (seen, not only a class), its message an
    alert naming it beside the form, the rebuild's own message beside its button; the last good
    trace stays, and a good value clears the mark."""
    L = app
    go_to_start(L, lesson)
    x = L.page.locator(L.sel(".bpv-x input")).first
    good = x.input_value()
    L.do("type an x of the wrong length", lambda: x.fill("1, 2, 3"))
    L.click("rebuild", ".bpv-rebuild")
    L.do("the field is outlined and named", lambda: L.page.wait_for_function(
        """(root) => { const r = document.querySelector(root);
           const f = r.querySelector('.bpv-x.bpv-bad input');
           const e = r.querySelector('.bpv-field-errors [role=alert]');
           return !!f && !!e && /\\bx\\b/.test(e.textContent); }""",
        arg=L.root, timeout=TIMEOUT_MS, polling=50))
    mark = L.page.evaluate("""(root) => {
        const r = document.querySelector(root), f = r.querySelector('.bpv-x input');
        const st = getComputedStyle(f), b = r.querySelector('.bpv-rebuild').getBoundingClientRect();
        const m = r.querySelector('.bpv-controls-message');
        const mr = m.getBoundingClientRect();
        return { style: st.borderTopStyle, px: parseFloat(st.borderTopWidth) || 0,
                 colour: st.borderTopColor, background: st.backgroundColor,
                 message: m.textContent.trim(), gap: Math.round(mr.top - b.bottom) }; }""", L.root)
    expect(L, "a visible red frame on the refused field",
           mark["style"] == "solid" and mark["px"] >= 2 and mark["colour"] == "rgb(179, 38, 30)",
           f"computed: {mark}")
    expect(L, "the rebuild's message right below its button",
           mark["message"] and 0 <= mark["gap"] <= 40, f"measured: {mark}")
    L.do("type the good x again", lambda: x.fill(good))
    L.click("rebuild", ".bpv-rebuild")
    L.do("the mark is gone", lambda: L.page.wait_for_function(
        "(root) => !document.querySelector(root).querySelector('.bpv-bad')",
        arg=L.root, timeout=TIMEOUT_MS, polling=50))
    print(f"\n[{L.app}] refused field: border {mark['style']} {mark['px']} px {mark['colour']}, "
          f"message {mark['message']!r} {mark['gap']} px below the rebuild button")
    go_to_start(L, lesson)
