"""The teacher's live view of a class: for the step the class is on, how many answered, the share
right first time, the slips the hints recognised and a histogram of the numbers typed; a table of
every step; the students still stuck. Refreshed from the class's store every ~1.5 s, without
reloading the page. Projector mode shows aggregates only, never a pseudonym."""
from __future__ import annotations

import asyncio
import html
import time

import ipywidgets as ipw

from ..core.errors import BackpropError
from ..live.events import normal_code
from ..live.link import source
from ..live.store import StoreError
from ..live.summary import ClassSummary, StepSummary, summarize
from .base import button, close_tree
from .classjoin import fingerprint
from .pagestyle import HERE, PageStyle

REFRESH = 1.5          # seconds between reads of the store
ARMED_S = 10.0         # reset / close class: the second press within this many seconds


class TeacherStyle(PageStyle):
    _css = HERE / "teacher.css"


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _n(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def _e(text) -> str:
    return html.escape(str(text))


class TeacherView(ipw.VBox):
    """``TeacherView(folder, code, stepper=None)``: the class ``code`` of the store in ``folder``
    (None: the server's, BPV_CLASS_DIR or the hub service; or a ClassStore or Remote);
    ``stepper`` (the teacher's own Stepper of the class's network) is moved to a step by the
    'open' buttons."""

    def __init__(self, folder=None, code: str | None = None, stepper=None,
                 refresh: float = REFRESH):
        self.store, self.code, problem = None, None, ""
        try:
            self.store = folder if hasattr(folder, "events") else source(folder)
            if self.store is None:
                raise StoreError("this server keeps no class: start it with `backpropviz teacher "
                                 "CLASS_DIR` (or `./dev teacher`), the class folder of "
                                 "`backpropviz classroom --class CLASS_DIR`; on JupyterHub, the "
                                 "class service (README, 'Teaching a class')")
            if code:
                self.code = normal_code(code)
            else:
                open_now = [c["code"] for c in self.store.classes() if c["closed"] is None]
                self.code = open_now[-1] if open_now else self.store.open_class()
        except (StoreError, BackpropError) as e:
            self.store, problem = None, str(e)
        self.stepper, self.every = stepper, refresh
        self.summary: ClassSummary | None = None
        self.count = -1
        self.title = ipw.HTML().add_class("bpv-t-title")
        self.projector = ipw.ToggleButton(description="projector", tooltip="projector mode: "
                                          "the class's aggregates only, large, no names",
                                          value=False).add_class("bpv-t-projector")
        self.reset_btn = button("reset", "forget this class's answers (press twice)",
                                "bpv-t-reset")
        self.close_btn = button("close class", "stop taking answers for this class (press "
                                "twice)", "bpv-t-close")
        self.message = ipw.HTML().add_class("bpv-t-message")
        self.now = ipw.HTML().add_class("bpv-t-now")
        self.open_now = button("open in my Stepper", "show this step in your own Stepper",
                               "bpv-t-open-now")
        self.table = ipw.VBox().add_class("bpv-t-table")
        self.students = ipw.HTML().add_class("bpv-t-students")
        bar = ipw.HBox([self.title, self.projector, self.reset_btn, self.close_btn, self.message],
                       layout=ipw.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([TeacherStyle(), bar, self.now, ipw.HBox([self.open_now]), self.table,
                          self.students])
        self.add_class("bpv-teacher")
        self._armed = None
        self._rows: dict[int, tuple] = {}           # step → (its text, its row)
        self._head = ipw.HTML('<div class="bpv-t-row bpv-t-head" role="row"><span>step</span>'
                              "<span>computes</span><span>answered</span><span>right first"
                              "</span><span>most common slip</span><span>stuck</span><span>"
                              "</span></div>")
        self.projector.observe(lambda _: self._projector(), names="value")
        self.reset_btn.on_click(lambda _: self._twice("reset"))
        self.close_btn.on_click(lambda _: self._twice("close"))
        self.open_now.on_click(lambda _: self.open_step(self.summary and self.summary.current))
        self._task = None
        if self.store is None:          # nothing to show or run: the reason, and no buttons
            self.now.value = f'<div class="bpv-t-card" role="alert">{_e(problem)}</div>'
            for w in (self.open_now, self.projector, self.reset_btn, self.close_btn):
                w.layout.display = "none"
            return
        self.update(force=True)
        if refresh:
            try:
                self._task = asyncio.get_event_loop().create_task(self._loop())
            except RuntimeError:          # no running loop (a plain script): update() by hand
                self._task = None

    async def _loop(self):
        """Every ``every`` seconds: read the store off the kernel's event loop (a slow hub or a
        locked database must not freeze the page), then draw. Nothing stops it but close()."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.every)
            try:
                read = await loop.run_in_executor(None, self._read, False)
                self._apply(read)
            except Exception as e:       # noqa: BLE001 — said on the page; the loop goes on
                self._problem(e)

    # --- reading the class ----------------------------------------------------------------------
    def update(self, force: bool = False) -> bool:
        """Read the store and redraw if anything arrived; False, and the reason on the page, if
        the class cannot be read or drawn now (the last good view stays)."""
        try:
            self._apply(self._read(force))
            return True
        except Exception as e:           # noqa: BLE001
            self._problem(e)
            return False

    def _read(self, force: bool) -> tuple:
        """(count, events or None when nothing arrived, open?): the store's calls, in one place."""
        n = self.store.count(self.code)
        events = self.store.events(self.code) if force or n != self.count else None
        return n, events, self.store.is_open(self.code)

    def _apply(self, read: tuple) -> None:
        n, events, self._open = read
        if events is not None:
            self.count, self.summary, self._events = n, summarize(events), events
            self._draw()
        else:
            self._title()
        if "bpv-t-problem" in self.message.value:
            self.message.value = ""          # read again: the problem said before is over

    def _problem(self, e: Exception) -> None:
        said = str(e) if isinstance(e, (StoreError, BackpropError)) else \
            f"the class could not be read ({type(e).__name__})"
        self.message.value = f'<span role="alert" class="bpv-t-problem">{_e(said)}</span>'

    def _title(self):
        s = self.summary
        closed = not getattr(self, "_open", True)
        self.title.value = (f"<b>class {_e(self.code)}</b>{' (closed)' if closed else ''} · "
                            f"{_n(s.students if s else 0, 'student')} · "
                            f"{_n(s.events if s else 0, 'answer')} · "
                            f"read {time.strftime('%H:%M:%S')}")

    def _draw(self):
        s = self.summary
        cur = s.step(s.current) if s.current is not None else None
        self.now.value = self._now_html(cur, s)
        self.open_now.layout.display = "none" if (cur is None or self.stepper is None) else ""
        self._table(s)
        self.students.value = "" if self.projector.value else self._students_html()
        self._title()                    # last: when the count shows, what it counts is shown

    def _now_html(self, st: StepSummary | None, s: ClassSummary) -> str:
        if st is None:
            return ('<div class="bpv-t-card" role="status"><p>No answers yet. Students join with '
                    f'the class code <b>{_e(self.code)}</b> in their Stepper.</p></div>')
        slips = "".join(f"<li>{_e(name)}: <b>{n}</b></li>" for name, n in st.slips) or \
            "<li>none</li>"
        top = max((n for _, n, _ in st.histogram), default=1) or 1
        bars = "".join(
            f'<div class="bpv-t-bar{" bpv-t-right" if right else ""}">'
            f'<span class="bpv-t-label">{_e(label)}{" ✔" if right else ""}</span>'
            f'<span class="bpv-t-fill" style="width:{int(100 * n / top)}%"></span>'
            f'<span class="bpv-t-count">{n}</span></div>' for label, n, right in st.histogram)
        left = f"<p>{s.left_out} answers about another network or view are not counted.</p>" \
            if s.left_out else ""
        if self.stepper is not None and s.fingerprint != fingerprint(
                self.stepper.model.module_trace):
            left += ("<p>Your Stepper shows another network than the one the class answers "
                     "about: set the same network, example and seed as the classroom app.</p>")
        return (f'<div class="bpv-t-card" role="status" aria-label="the step the class is on">'
                f"<h3>the class is on step {st.step}: {_e(st.writes)} {_e(st.tag)}</h3>"
                f'<div class="bpv-t-figures"><span>answered <b>{st.answered}</b> of '
                f"{s.students}</span><span>right first time <b>{_pct(st.share_right_first)}"
                f"</b></span><span>after a hint <b>{st.right_after_hint}</b></span>"
                f"<span>revealed <b>{st.revealed}</b></span><span>stuck <b>{st.stuck}</b>"
                f"</span></div>"
                f'<div class="bpv-t-parts"><div><h4>slips</h4><ul>{slips}</ul></div>'
                f'<div class="bpv-t-hist" role="img" aria-label="the numbers typed (first '
                f'entry), one bar per value">'
                f"<h4>numbers typed (first entry)</h4>{bars}</div></div>{left}</div>")

    def _table(self, s: ClassSummary):
        """One row per step, made once and then only given new text (a refresh every 1.5 s must
        not leave widgets behind in the kernel)."""
        for st in s.steps:
            slip = f"{st.slips[0][0]} ({st.slips[0][1]})" if st.slips else "–"
            here = " bpv-t-here" if st.step == s.current else ""
            cells, _ = self._row(st.step)
            cells.value = (f'<div class="bpv-t-row{here}" role="row"><span>{st.step}</span>'
                           f"<span>{_e(st.writes)} {_e(st.tag)}</span><span>{st.answered}"
                           f"</span><span>{_pct(st.share_right_first)}</span>"
                           f"<span>{_e(slip)}</span><span>{st.stuck}</span></div>")
        rows = [self._head] + [self._row(st.step)[1] for st in s.steps]
        if list(self.table.children) != rows:
            self.table.children = rows

    def _row(self, k: int) -> tuple:
        """Step k's row: its text, and the box that holds it with its 'open k' button."""
        if k not in self._rows:
            cells = ipw.HTML()
            parts = [cells]
            if self.stepper is not None:
                b = button(f"open {k}", f"show step {k} in your own Stepper", "bpv-t-open")
                b.on_click(lambda _, k=k: self.open_step(k))
                parts.append(b)
            self._rows[k] = (cells, ipw.HBox(parts, layout=ipw.Layout(align_items="center")))
        return self._rows[k]

    def _students_html(self) -> str:
        latest: dict[str, dict] = {}
        for e in self._events:
            latest[e["student"]] = e
        if not latest:
            return ""
        rows = "".join(f"<tr><td>{_e(name)}</td><td>{e['step']}</td><td>{_e(e['outcome'])}"
                       f"{' (' + _e(e['slip']) + ')' if e['slip'] else ''}</td></tr>"
                       for name, e in sorted(latest.items()))
        return ('<details><summary>each student\'s last answer (not in projector mode)'
                '</summary><table><thead><tr><th scope="col">student</th><th scope="col">step'
                '</th><th scope="col">last answer</th></tr></thead>'
                f"<tbody>{rows}</tbody></table></details>")

    # --- the teacher's buttons ------------------------------------------------------------------
    def open_step(self, k) -> None:
        """Show step k in the teacher's Stepper, in the view the class answered in."""
        if self.stepper is None or k is None:
            return
        m, view = self.stepper.model, self.summary.view if self.summary else None
        note = ""
        if view in ("modules", "scalar circuit") and m.granularity != view:
            m.set_granularity(view)
        elif view == "expanded":
            note = " (the class answered with a module expanded: open that module to match)"
        m.go(int(k))
        self.message.value = (f'<span role="status">your Stepper shows step {int(k)}'
                              f"{_e(note)}</span>")

    def _projector(self):
        if self.projector.value:
            self.add_class("bpv-t-big")
        else:
            self.remove_class("bpv-t-big")
        self.students.layout.display = "none" if self.projector.value else ""
        self._draw() if self.summary is not None else None

    def _twice(self, what: str):
        armed = self._armed
        if armed is None or armed[0] != what or time.monotonic() - armed[1] > ARMED_S:
            self._armed = (what, time.monotonic())
            self.message.value = (f'<span role="alert">press {what} again to '
                                  f'{"forget every answer of" if what == "reset" else "close"} '
                                  f"class {_e(self.code)}</span>")
            return
        self._armed = None
        try:
            if what == "reset":
                n = self.store.reset(self.code)
                said = f"forgot {n} answers"
            else:
                self.store.close_class(self.code)
                said = f"class {self.code} is closed: it takes no more answers"
        except StoreError as e:
            said = str(e)
        self.message.value = f'<span role="status">{_e(said)}</span>'
        self.update(force=True)

    def close(self):
        if self._task is not None:
            self._task.cancel()
        if self.store is not None:
            self.store.close()
        seen = {id(self)}
        for w in [*self.children, *(box for _, box in self._rows.values())]:
            close_tree(w, seen)            # a VBox's close() leaves its children open
        super().close()
