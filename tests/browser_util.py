"""Helpers for the in-browser tests (tests/test_browser.py): servers, Chromium, and a "learner".

* ``LabServer`` / ``VoilaServer`` start ``jupyter lab`` / ``voila`` from this Python environment on
  127.0.0.1, a free port, a token and fresh temporary Jupyter directories; ``stop()`` ends the
  process group they were started in (and only that).
* ``Learner`` drives the ``Stepper`` widget in a Playwright page the way a learner would (real
  clicks, typing), reads what the page shows, and turns every wait into a named step: a wait that
  fails saves ``artifacts/browser/FAILED-<app>-<step>.png`` and fails the test naming the step.
* ``latency_summary`` turns click-to-graph times into median / p90 / max.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("BPV_CHROMIUM", "/usr/bin/chromium")     # override: to test the skip
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_S = 60                      # every single wait
TIMEOUT_MS = TIMEOUT_S * 1000


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"Chromium not installed: no executable {CHROMIUM} "
                "(Debian/Ubuntu: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"Chromium not installed: Playwright for Python cannot be imported ({e}); pip install playwright"
    return None


# --- servers -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(tmp: Path) -> dict:
    """A fresh, private set of Jupyter config/runtime/settings/workspace directories."""
    env = dict(os.environ)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")]:
        (tmp / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp / sub)
    # no "would you like to get notified about Jupyter news?" toast over the notebook
    notif = tmp / "lab-settings" / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True, exist_ok=True)
    (notif / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("JUPYTER_TOKEN", None)
    return env


class Server:
    """A Jupyter-style server in its own process group, stopped by ``stop()`` (idempotent)."""

    name = "server"
    any_answer = False          # True: any HTTP answer (even 404) means the server is up

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self, cwd: Path) -> "Server":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=cwd, env=jupyter_env(self.tmp),
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self.t_ready = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> float:
        t0 = time.monotonic()
        url = self.ready_url()
        while time.monotonic() - t0 < TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} before "
                                   f"answering; its log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except urllib.error.HTTPError as e:
                if self.any_answer:          # it answers: it is up
                    return time.monotonic() - t0
                e.close()
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer {url.split('?')[0]} within {TIMEOUT_S} s; "
                           f"its log:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)     # the group this server was started in
                p.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        if not self._log.closed:
            self._log.close()


# the lessons' servers as ./dev lab starts them: kernel websockets without Nagle's delay
NODELAY = "--ServerApp.jpserver_extensions=backpropviz.serverext=True"


class LabServer(Server):
    name = "jupyterlab"

    def __init__(self, tmp: Path, root_dir: Path):
        super().__init__(tmp)
        self.root_dir = root_dir

    def command(self):
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0",
               f"--IdentityProvider.token={self.token}", "--LabApp.news_url=None",
               f"--ServerApp.root_dir={self.root_dir}", NODELAY]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def ready_url(self):
        return f"{self.base}/api/status?token={self.token}"

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}"

    def stop(self):
        # shut the kernels down through the server first (they live in their own sessions)
        if self.proc is not None and self.proc.poll() is None:
            try:
                req = urllib.request.Request(f"{self.base}/api/shutdown?token={self.token}",
                                             method="POST", data=b"")
                urllib.request.urlopen(req, timeout=5).close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        super().stop()


class NotebookServer(LabServer):
    """Jupyter Notebook 7: the same front-end parts as JupyterLab, one document per page."""

    name = "notebook7"

    def command(self):
        cmd = [sys.executable, "-m", "notebook", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--port-retries=0",
               f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root_dir}", NODELAY]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def url(self, notebook: str) -> str:
        return f"{self.base}/notebooks/{notebook}?token={self.token}"


class VoilaServer(Server):
    name = "voila"
    any_answer = True           # its only page runs the notebook: poll a URL that does not exist

    def __init__(self, tmp: Path, notebook: Path):
        super().__init__(tmp)
        self.notebook = notebook

    def command(self):
        return [sys.executable, "-m", "voila", str(self.notebook), "--no-browser",
                "--Voila.ip=127.0.0.1", f"--port={self.port}", "--Voila.port_retries=0",
                f"--token={self.token}"]

    def ready_url(self):
        return f"{self.base}/voila/no-such-page-{self.token[:8]}"

    def url(self) -> str:
        return f"{self.base}/?token={self.token}"


# --- Run All in JupyterLab and Notebook 7 -----------------------------------------------------------
RUN_ALL_TRIES = 3               # a Run All lost to an unbound kernel is issued again, this often
RUN_ALL_TAKEN_MS = 20_000       # how long a Run All may take to reach the kernel
PAGE_VISITS = 2                 # the page as opened, then once more after a reload

# Before Run All: mark what the saved notebook shows (outputs, widgets restored from it) as stale,
# and watch for proof that the Run All was taken: a cell queued or running ([*]). A
# MutationObserver sees it even when a cell runs between two polls. (A changed prompt is no proof:
# a notebook that renders cells as they scroll into view changes its prompts; nor is a busy
# kernel: the widget manager's own requests make it busy.)
ARM_RUN_ALL_JS = r"""
(stale) => {
  document.querySelectorAll(stale).forEach(e => e.setAttribute('data-bpv-stale', '1'));
  const m = { taken: false };
  const look = () => {
    if (!m.taken && [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .some(p => p.textContent.includes('*'))) m.taken = true;
  };
  if (window.__bpvRunAllObs) window.__bpvRunAllObs.disconnect();
  window.__bpvRunAll = m;
  window.__bpvRunAllObs = new MutationObserver(look);
  window.__bpvRunAllObs.observe(document.body, { subtree: true, childList: true,
                                                 characterData: true });
  const cells = document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell');
  const last = cells[cells.length - 1];
  return !!last && !!last.querySelector('.jp-OutputArea-output');
}
"""

# Every cell has run: the last code cell shows a fresh output (if it had one before), no cell
# waits ([*]), the kernel is idle, and what the caller waits for (``ready``) is there. A dialog
# (JupyterLab's "Select Kernel", seen on a busy machine) is reported instead: it stops everything.
ALL_CELLS_RUN_JS = r"""
([lastHadOutput, ready]) => {
  if (document.querySelector('.jp-Dialog')) return 'dialog';
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')];
  const last = cells[cells.length - 1];
  const fresh = !lastHadOutput || (!!last
    && !!last.querySelector('.jp-OutputArea-output:not([data-bpv-stale])'));
  const queued = cells.some(c => {
    const p = c.querySelector('.jp-InputPrompt');
    return !!p && p.textContent.includes('*'); });
  const idle = !!document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
  return fresh && !queued && idle && (!ready || !!document.querySelector(ready)) ? 'done' : false;
}
"""


def _no_run_all_taken():
    raise AssertionError(f"no cell ran within {RUN_ALL_TAKEN_MS // 1000} s of Run All "
                         f"({RUN_ALL_TRIES} tries)")


def accept_dialogs(page, tries: int = 6) -> list[str]:
    """Dialogs over the notebook (JupyterLab's "Select Kernel" when the kernel was not started in
    time; on a busy machine a second one can follow the first): accept each one's default, as a
    learner would, the topmost first; returns their titles. A click that does not close a dialog
    within 15 s is tried again, then Enter."""
    titles = []
    for attempt in range(tries):
        dialogs = page.locator(".jp-Dialog")
        n = dialogs.count()
        if n == 0:
            return titles
        top = dialogs.last
        titles.append(top.locator(".jp-Dialog-header").inner_text(timeout=5_000).strip())
        if attempt % 2 == 0:
            top.locator(".jp-Dialog-button.jp-mod-accept").last.click(timeout=TIMEOUT_MS)
        else:
            page.keyboard.press("Enter")
        try:
            page.wait_for_function("(n) => document.querySelectorAll('.jp-Dialog').length < n",
                                   arg=n, timeout=15_000, polling=100)
        except Exception:           # noqa: BLE001 — still there: again
            pass
    if page.locator(".jp-Dialog").count():
        raise AssertionError(f"dialogs would not close: {titles}")
    return titles


def run_all_cells(do, page, ready: str | None = None,
                  stale: str = ".jp-OutputArea-output, .bpv-stepper, .bpv-lab") -> int:
    """Open a notebook's page first; then wait for its kernel, Run > Run All Cells, and wait until
    every cell has run and ``ready`` (a CSS selector, e.g. the widget the notebook shows) is
    there. ``do(step, action)`` runs a named step (it fails the test naming the step).

    A Run All clicked before the front end has bound its kernel is lost (nothing runs), and on a
    busy machine JupyterLab may ask which kernel to start, sometimes again and again. So: a
    dialog is accepted, Run All is issued again (up to RUN_ALL_TRIES times) when no cell ran
    within RUN_ALL_TAKEN_MS or a dialog stopped it, and if that fails the page is reloaded (as a
    person would) and all of it done once more. Used by every browser test in JupyterLab and
    Notebook 7. Returns the number of Run Alls issued.
    """
    issued, failures = 0, []
    for visit in range(1, PAGE_VISITS + 1):
        if visit > 1:
            do("reload the notebook's page", lambda: page.reload(timeout=TIMEOUT_MS))
        try:
            return issued + _run_all_on_this_page(page, ready, stale)
        except Exception as e:      # noqa: BLE001 — said below if the last visit fails too
            failures.append(str(e).strip().splitlines()[0] if str(e).strip() else repr(e))
            issued += RUN_ALL_TRIES
    do("Run All, on the page and after a reload", lambda: _raise("; ".join(failures)))
    return issued


def _run_all_on_this_page(page, ready, stale) -> int:
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=TIMEOUT_MS)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Dialog",
                           timeout=TIMEOUT_MS)
    last_had_output = page.evaluate(ARM_RUN_ALL_JS, stale)
    for attempt in range(1, RUN_ALL_TRIES + 1):
        accept_dialogs(page)
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).first.click(
            timeout=TIMEOUT_MS)
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click(timeout=TIMEOUT_MS)
        try:
            page.wait_for_function("() => (window.__bpvRunAll && window.__bpvRunAll.taken) "
                                   "|| !!document.querySelector('.jp-Dialog')",
                                   timeout=RUN_ALL_TAKEN_MS, polling=100)
        except Exception:           # noqa: BLE001 — nothing ran: the kernel was not bound
            if attempt == RUN_ALL_TRIES:
                _no_run_all_taken()
            continue
        state = page.wait_for_function(ALL_CELLS_RUN_JS, arg=[last_had_output, ready],
                                       timeout=TIMEOUT_MS, polling=100).json_value()
        if state == "done":
            return attempt
    raise AssertionError(f"a dialog stopped Run All {RUN_ALL_TRIES} times")


def _raise(message: str):
    raise AssertionError(message)


# --- the learner -----------------------------------------------------------------------------------
# What the page shows of the stepper, read in one go. ``root`` selects the live stepper.
READ_JS = r"""
(root) => {
  const r = document.querySelector(root);
  if (!r) return null;
  const svg = r.querySelector('.bpv-graph svg');
  const txt = (s) => { const e = r.querySelector(s); return e ? e.innerText.trim() : null; };
  const oval = svg && svg.querySelector('ellipse.cur-F, ellipse.cur-B');
  const box = svg && svg.querySelector('rect.cur-F, rect.cur-B');
  const phase = (e) => e ? (e.classList.contains('cur-F') ? 'F' : 'B') : null;
  const shown = (s) => { const e = r.querySelector(s); return !!e && e.offsetParent !== null; };
  const dis = (s) => { const e = r.querySelector(s); return e ? e.disabled : null; };
  const eq = r.querySelector('.bpv-equation');
  return {
    step: svg ? svg.getAttribute('data-step') : null,
    module: oval ? oval.closest('[data-module]').getAttribute('data-module') : null,
    node: box ? box.closest('[data-node]').getAttribute('data-node') : null,
    module_phase: phase(oval), node_phase: phase(box),
    n_cur: svg ? svg.querySelectorAll('.cur-F, .cur-B').length : 0,
    counter: txt('.bpv-counter'),
    equation: txt('.bpv-equation'),
    equation_tex: eq ? [...eq.querySelectorAll('mjx-container, .MathJax, script[type^="math/tex"]')]
                         .length : 0,
    equation_raw_dollars: eq ? eq.innerText.includes('$$') : null,
    feedback: txt('.bpv-feedback'),
    message: txt('.bpv-message'),
    prompt: txt('.bpv-prompt'),
    asking: shown('.bpv-answer'),
    next_disabled: dis('.bpv-next'), prev_disabled: dis('.bpv-prev'),
  };
}
"""

# Time from the learner's click on a button to the moment the graph's svg shows another step.
# A capture listener stamps the click; a MutationObserver stamps the new data-step.
ARM_LATENCY_JS = r"""
([root, button]) => {
  const r = document.querySelector(root);
  const b = r.querySelector(button);
  const svgStep = () => { const s = r.querySelector('.bpv-graph svg');
                          return s ? s.getAttribute('data-step') : null; };
  const m = { old: svgStep(), t0: null, t1: null, step: null };
  window.__bpvLatency = m;
  const onClick = () => { if (m.t0 === null) m.t0 = performance.now(); };
  b.addEventListener('click', onClick, { capture: true, once: true });
  const obs = new MutationObserver(() => {
    const s = svgStep();
    if (m.t0 !== null && s !== m.old) { m.t1 = performance.now(); m.step = s; obs.disconnect(); }
  });
  obs.observe(r, { subtree: true, childList: true, attributes: true,
                   attributeFilter: ['data-step'] });
  return m.old;
}
"""


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:90]


class Learner:
    """A learner in front of one page: clicks, types, reads; every wait is a named step."""

    def __init__(self, page, app: str, root: str = ".bpv-stepper"):
        self.page = page
        self.app = app                 # "lab" or "voila": prefixes screenshots and messages
        self.root = root
        self.latencies: list[float] = []       # in the page: click event → new data-step
        self.wall: list[float] = []            # from Python: click() called → change seen
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # screenshots
    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{self.app}-{safe_name(name)}.png"
        try:
            self.page.screenshot(path=str(path), timeout=15_000)
        except Exception:           # noqa: BLE001 — a screenshot must never hide the real error
            pass
        return path

    def fail(self, step: str, err: BaseException | str):
        path = ARTIFACTS / f"FAILED-{self.app}-{safe_name(step)}.png"
        try:
            self.page.screenshot(path=str(path), timeout=15_000)
            where = f"screenshot: {path.relative_to(ROOT)}"
        except Exception as e:      # noqa: BLE001
            where = f"no screenshot ({e})"
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        s = self.read() or {}
        shown = {k: s.get(k) for k in ("step", "module", "node", "counter", "feedback", "message")}
        shown["equation"] = (s.get("equation") or "").split("\n")[0]
        pytest.fail(f"[{self.app}] step '{step}' failed: {detail}\n  now shown: {shown}\n"
                    f"  {where}", pytrace=False)

    # named actions and waits
    def do(self, step: str, action):
        """Run one action (a click, typing, a wait) as a named step."""
        try:
            return action()
        except Exception as e:      # noqa: BLE001 — Playwright timeouts and errors alike
            err = e
        self.fail(step, err)        # outside the except: no chained traceback

    def wait_for(self, step: str, js: str, arg=None, timeout_ms: int = TIMEOUT_MS):
        """Wait until ``js(state, arg)`` is truthy, where state is what READ_JS returns."""
        fn = f"([root, arg]) => {{ const s = ({READ_JS})(root); if (!s) return false; " \
             f"return ({js})(s, arg); }}"
        return self.do(step, lambda: self.page.wait_for_function(
            fn, arg=[self.root, arg], timeout=timeout_ms, polling=20))

    def read(self) -> dict | None:
        try:
            return self.page.evaluate(READ_JS, self.root)
        except Exception:           # noqa: BLE001
            return None

    def sel(self, part: str) -> str:
        return f"{self.root} {part}"

    def click(self, step: str, part: str):
        self.do(step, lambda: self.page.locator(self.sel(part)).first.click(timeout=TIMEOUT_MS))

    def click_until_step_changes(self, step: str, part: str) -> dict:
        """Click a button; wait for the graph, the counter and the equation to change.

        Returns the new state; the click-to-graph time goes into ``latencies``.
        """
        before = self.read()
        self.do(step + " (arm timer)",
                lambda: self.page.evaluate(ARM_LATENCY_JS, [self.root, part]))
        t0 = time.perf_counter()
        self.click(step + " (click)", part)
        self.do(step + " (graph updated)", lambda: self.page.wait_for_function(
            "() => window.__bpvLatency && window.__bpvLatency.t1 !== null",
            timeout=TIMEOUT_MS, polling="raf"))
        self.wall.append((time.perf_counter() - t0) * 1000)
        m = self.page.evaluate("() => window.__bpvLatency")
        self.latencies.append(m["t1"] - m["t0"])
        self.wait_for(step + " (counter and equation updated)",
                      "(s, b) => s.counter !== b.counter && s.equation !== b.equation",
                      before)
        return self.read()

    def type_answer(self, step: str, text: str):
        self.do(step, lambda: self.page.locator(self.sel(".bpv-answer input")).fill(
            text, timeout=TIMEOUT_MS))


def latency_summary(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0}
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]
    med = (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2
    return {"n": len(s), "median_ms": round(med, 1), "p90_ms": round(pick(0.9), 1),
            "max_ms": round(s[-1], 1), "min_ms": round(s[0], 1),
            "samples_ms": [round(v, 1) for v in samples]}


def copy_notebooks(dest: Path) -> Path:
    """A throw-away copy of notebooks/ (the committed lesson is never touched)."""
    shutil.copytree(ROOT / "notebooks", dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest
