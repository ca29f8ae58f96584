"""The teacher's live view as a teacher's browser shows it, for ``bench_classroom.py --class``.

* ``TeacherServer``: ``python -m backpropviz teacher CLASS_DIR --lessons DIR`` (09_teacher on a
  Voilà server of its own), on 127.0.0.1, a free port, a token and temporary Jupyter directories
  (tests/browser_util.Server: its own process group, stopped by ``stop()``).
* ``TeacherWatch``: this file run as a process of its own (``python bench_class_teacher.py URL
  OUT``): headless Chromium (Playwright) opens the view and the page itself notes ``[Date.now(),
  answers]`` each time the answer count in its title (``.bpv-t-title``: "class CODE · N students ·
  M answers · read HH:MM:SS") changes, so the notes do not depend on when this process looks.
  Told ``stop N`` on its stdin, it waits (at most ``FINAL_S``) for the title to show N answers,
  writes what the page noted to OUT (JSON) and closes Chromium.
* ``seen_latency(events, noted)``: for each stored event (in the store's order), the time the
  title first showed an answer count at least the event's rank, minus the event's ``received``.

Both clocks are the machine's wall clock (``Date.now()`` in the page, ``time.time()`` in the
store). Every wait has a hard timeout.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from browser_util import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

PAGE_S = 180            # the teacher's page: its kernel runs 09_teacher when it is asked for
READY_S = 240           # the watcher says "ready" (Chromium up, page shown, observer set)
WATCH_S = 1200          # the watcher ends on its own after this long whatever it is told
FINAL_S = 30            # after "stop N": the title showing N answers

# in the page: note the answer count of the title each time it changes
OBSERVE_JS = r"""
() => {
  const title = document.querySelector('.bpv-t-title');
  const noted = window.__bpvNoted = [];
  let last = -1;
  const look = () => {
    const m = /(\d+) answers?\b/.exec(title.textContent);
    if (m && Number(m[1]) !== last) { last = Number(m[1]); noted.push([Date.now(), last]); }
  };
  new MutationObserver(look).observe(title, {subtree: true, childList: true,
                                             characterData: true});
  look();
  return noted.length;
}
"""
TITLE_READY_JS = r"""() => /\d+ answers?\b/.test(
  (document.querySelector('.bpv-t-title') || {}).textContent || '')"""
TITLE_AT_LEAST_JS = r"""(n) => { const m = /(\d+) answers?\b/.exec(
  (document.querySelector('.bpv-t-title') || {}).textContent || ''); return !!m && +m[1] >= n; }"""


class TeacherServer(Server):
    """The teacher's view of the class in ``class_dir``, as ``backpropviz teacher`` serves it
    (the teacher's copies of the lessons go to a temporary folder)."""

    name = "teacher-voila"
    any_answer = True

    def __init__(self, tmp: Path, class_dir: Path):
        Path(tmp).mkdir(parents=True, exist_ok=True)
        super().__init__(Path(tmp))
        self.class_dir, self.lessons = Path(class_dir), Path(tmp) / "teacher-lessons"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "backpropviz", "teacher", str(self.class_dir),
                f"--lessons={self.lessons}", "--Voila.ip=127.0.0.1", f"--port={self.port}",
                "--Voila.port_retries=0", f"--token={self.token}"]

    def ready_url(self) -> str:
        return f"{self.base}/voila/no-such-page-{self.token[:8]}"

    def start(self) -> "TeacherServer":
        super().start(cwd=ROOT)
        return self

    def url(self) -> str:
        return f"{self.base}/?token={self.token}"


class TeacherWatch:
    """The watcher process (this file's ``main``): ``start()`` returns once the page shows its
    title and notes it; ``stop(n)`` returns what the page noted (or raises, naming why)."""

    def __init__(self, url: str, tmp: Path):
        self.url, self.out = url, Path(tmp) / "teacher-noted.json"
        self.log_path = Path(tmp) / "teacher-watch.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "TeacherWatch":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, self.url, str(self.out)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, start_new_session=True)
        end = time.monotonic() + READY_S
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready and self.proc.stdout.readline().strip() == "ready":
                return self
        self.kill()
        raise RuntimeError(f"the teacher's page was not shown within {READY_S} s; the "
                           f"watcher's log:\n{self.log_tail()}")

    def stop(self, answers: int) -> dict:
        try:
            self.proc.stdin.write(f"stop {int(answers)}\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=FINAL_S + 60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()
        try:
            return json.loads(self.out.read_text())
        except (OSError, ValueError):
            raise RuntimeError(f"the watcher wrote nothing; its log:\n{self.log_tail()}") from None

    def kill(self):
        """End the watcher and its Chromium (its own process group), if still running."""
        p = self.proc
        if p is not None and p.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                    p.wait(timeout=10)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue
        if hasattr(self, "_log") and not self._log.closed:
            self._log.close()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def seen_latency(events: list[dict], noted: list) -> tuple[list[float], int]:
    """(seconds from each event's ``received`` to the first time the title showed at least its
    rank's count, for the events it showed; how many it never showed)."""
    out, unseen, i = [], 0, 0
    noted = sorted((t / 1000, n) for t, n in noted)
    for rank, e in enumerate(events, 1):
        while i < len(noted) and noted[i][1] < rank:
            i += 1
        if i == len(noted):
            unseen += 1
        else:
            out.append(noted[i][0] - e["received"])
    return out, unseen


# --- the watcher process --------------------------------------------------------------------------
def _told(page, deadline: float) -> int | None:
    """Wait for "stop N" on stdin (keeping Playwright's connection served); N, or None."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready:
            line = sys.stdin.readline()
            parts = line.split()
            return int(parts[1]) if len(parts) == 2 and parts[0] == "stop" else None
        page.wait_for_timeout(250)
    return None


def main(url: str, out: Path) -> int:
    from playwright.sync_api import Error, sync_playwright
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=PAGE_S * 1000)
            page.wait_for_function(TITLE_READY_JS, timeout=PAGE_S * 1000)
            page.evaluate(OBSERVE_JS)
            print("ready", flush=True)
            answers = _told(page, t0 + WATCH_S)
            final = True
            if answers is not None:
                try:
                    page.wait_for_function(TITLE_AT_LEAST_JS, arg=answers,
                                           timeout=FINAL_S * 1000)
                except Error:
                    final = False
            out.write_text(json.dumps({
                "noted": page.evaluate("window.__bpvNoted"),
                "title": page.text_content(".bpv-t-title"), "final": final}))
            return 0
        except Error as e:
            page.screenshot(path=str(out.with_suffix(".png")))
            print(f"the teacher's page: {e}", file=sys.stderr)
            return 1
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
