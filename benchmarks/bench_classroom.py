"""A class on one Voilà server: N students open the classroom app and click through one pass.

Run:  python benchmarks/bench_classroom.py [--students 1 10 30] [--think S] [--spread S]
                                           [--class] [--out FILE.json] [-- EXTRA VOILA ARGUMENTS]
      (prints a Markdown table; figures, not a test; about 2 minutes per N on 2 cores)

For each N a fresh Voilà server is started as ``./dev voila --students 30`` starts it: set up for a
class of 30 whatever N arrive. ./dev's ``voila)`` case runs ``python -m backpropviz classroom DIR``
(read from ./dev, ``dev_voila_command``); the bench runs the same command with DIR a temporary
folder (the CLI copies the student copies of the lessons there, lays out the app's graphs and
serves DIR with the shipped ``classroom/voila.json``), the pool of 30 passed as ``--students``
passes it (``class_args``), on 127.0.0.1, a free port, a token and temporary Jupyter directories.
It waits until the pool of pre-heated kernels is full and quiet (a teacher starts the server
before the class), then N students arrive together (or evenly over ``--spread`` seconds); each
opens the page, then clicks through one pass. A student is simulated at the protocol level, as the
Voilà page's front end speaks it (no browser on the server's cores):

1. GET /voila/render/06_classroom.ipynb: the page (rendered by a pre-heated kernel or a new one);
   it must be complete (``voila_finish``), with at least as many outputs as the committed notebook,
   a widget view and no error or timeout output, or the page counts as failed;
2. the kernel websocket /api/kernels/<id>/channels (the v1 subprotocol, as JupyterLab's services
   ask for it): kernel_info, then the ipywidgets control comm (``jupyter.widget.control``,
   ``request_states``), the widget states the page renders from. "Ready" is when the state of
   the displayed Stepper has arrived;
   The graph's front end then asks for its scene (``{"hello": 1}``), as the page does when it
   draws the graph; "ready" is when that scene has arrived;
3. one whole pass of the class's Stepper: click "step ▶" (the bar's message ``{"move": k + 1,
   "how": "button"}``) or, where the Stepper asks for a prediction, "reveal" (``{"event":
   "click"}`` to the button's model); a click's latency is until the graph's scene message for the
   next step comes back; the next click waits for the kernel to be idle (and ``--think`` seconds:
   0, clicking as fast as the app answers, is the worst case). Every byte the kernel sends from
   the click to idle is counted (bytes per click).
   With ``--view circuit`` each student first switches to the scalar circuit (``{"granularity":
   "scalar circuit"}``; the time until its first scene arrives is the switch) and then clicks
   ``--circuit-steps`` steps of it (its pass has ~1,900).

The client acknowledges what it reads at once (TCP_QUICKACK; see ``quickack``), as Chromium's
connection behaved here: otherwise Linux's delayed ACK and the server's Nagle algorithm add ~40 ms
to every click that a browser does not see.

Kernel CPU (user + system, with waited-for children such as dot) and memory (RSS and PSS) are read
from /proc for each student's kernel process, a child of the Voilà server. Every wait has a hard
timeout, N is at most 60, and nothing listens beyond 127.0.0.1.

``--class`` (issue 21, a class's predictions live): two rounds of the same N students, first
without a class, then with one (``backpropviz classroom --class CLASS_DIR``, a temporary class
folder with one class open). In both rounds each student answers every prediction of the pass in
predict mode by typing into the answer box and pressing "check" (the box's value through a comm
``update``, then the button's click), as fast as the app answers, following ``PLANS`` by student
and step: right first time; a wrong shape, then right; revealed; a wrong value, then revealed. The
right answers are computed here from the app's first code cell (``AnswerKey``). With the class,
each student first joins it as a browser would (the join row's code and name Text values through
comm ``update``s, then a click on "join"), and the teacher watches: 09_teacher on its own Voilà
server (``backpropviz teacher CLASS_DIR``) in headless Chromium (bench_class_teacher.py). After the
round and a short settle the class's SQLite store is read: the events stored against the events
the students' clicks should have made (one per checked attempt on a step not yet revealed, and
one per reveal), per student; and for each stored event, when the teacher's title first counted
it, minus its ``received`` time. The bench exits with status 1 when an event is lost (or stored
twice, or never shown to the teacher).

The student client (``Student``, ``ClassroomServer``) is also used by
tests/test_classroom_server.py.
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))         # bench_class_teacher, when loaded from a test
from browser_util import Server  # noqa: E402  (the one server harness)
from bench_class_teacher import TeacherServer, TeacherWatch, seen_latency  # noqa: E402  (--class)
NOTEBOOK = "06_classroom.ipynb"          # the classroom app, relative to the served notebooks/
MAX_STUDENTS = 60
SERVER_TIMEOUT_S = 60                    # server answering
POOL_TIMEOUT_S = 180                     # pool of pre-heated kernels full
PAGE_TIMEOUT_S = 180                     # one page (a student arriving with 30 others)
MSG_TIMEOUT_S = 60                       # any single kernel reply
RUN_TIMEOUT_S = 900                      # a whole round of N students
CLASS_SIZE = 30                          # the class the server is set up for, whatever N arrive
SETTLE_S = 30                            # --class: the store taking the last events, at most
LINK_S = 20                              # --class: a student's link saying all its events are in
CLASS_ENV = ("BPV_CLASS_DIR", "BPV_CLASS_URL", "BPV_CLASS_CODE")   # a class, for the kernels
CLK_TCK = os.sysconf("SC_CLK_TCK")


def class_args(students: int) -> list[str]:
    """``./dev voila --students N``: the CLI gives Voilà a pool of N pre-heated kernels
    (``--pool_size=N``; without it, 1, for one learner). Not a second ``--pool_size``: Voilà
    refuses a repeated one."""
    return [f"--students={students}"]


# --- the server, as ./dev voila starts it -------------------------------------------------------
def dev_voila_command(dev: Path = ROOT / "dev") -> list[str]:
    """What the ``voila)`` case of ./dev runs after ``$PY``, without the user's arguments
    ("${@:2}"): ``-m backpropviz classroom DIR``; a RuntimeError if it runs something else."""
    text = dev.read_text()
    # from the case's label to the next label of ./dev's case (a case inside it is indented more)
    m = re.search(r"^ {0,2}voila\)\s*$(.*?)^ {0,2}(?:[\w-]+|\*)\)\s*$", text, re.M | re.S)
    if not m:
        raise RuntimeError(f"{dev}: no 'voila)' case")
    for line in m.group(1).splitlines():
        tokens = shlex.split(line.strip(), comments=True)
        if tokens[:2] == ["exec", "$PY"]:
            words = [t for t in tokens[2:] if not t.startswith("$") and t != ";;"]
            if words[:3] != ["-m", "backpropviz", "classroom"] or len(words) != 4:
                raise RuntimeError(f"{dev}: the 'voila)' case runs {words}, not "
                                   f"`-m backpropviz classroom DIR`: update the bench")
            return words
    raise RuntimeError(f"{dev}: the 'voila)' case runs no `exec \"$PY\" ...`")


class ClassroomServer(Server):
    """``./dev voila`` (``python -m backpropviz classroom DIR``, DIR a temporary folder; with
    ``class_dir``, ``--class CLASS_DIR``) on 127.0.0.1, a free port, a token and temporary Jupyter
    directories, in its own process group (browser_util.Server); ``stop()`` shuts it down (it
    shuts its kernels down) and then ends any of its kernels still alive, by pid."""

    name = "voila"
    any_answer = True           # its only pages run notebooks: any answer means it is up

    def __init__(self, tmp: Path, extra_args: list[str] = (), class_dir: Path | None = None):
        super().__init__(Path(tmp))
        self.extra_args = list(extra_args)
        self.class_dir = class_dir
        self.lessons = self.tmp / "lessons"          # DIR: the student copies, served
        self._kernel_pids: set[int] = set()

    def command(self) -> list[str]:
        *cli, _dir = dev_voila_command()
        # the CLI's own options (class_args: --students N), then Voilà's
        return [sys.executable, *cli, str(self.lessons),
                *([f"--class={self.class_dir}"] if self.class_dir is not None else []),
                *self.extra_args, "--no-browser", "--Voila.ip=127.0.0.1", f"--port={self.port}",
                "--Voila.port_retries=0", f"--token={self.token}"]

    def ready_url(self) -> str:
        return f"{self.base}/voila/no-such-page-{self.token[:8]}"

    def start(self) -> "ClassroomServer":
        for var in CLASS_ENV:       # a class only through --class: not from the bench's own shell
            os.environ.pop(var, None)
        self.t_start = time.monotonic()
        super().start(cwd=ROOT)
        self.t_up = self.t_ready
        return self

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"voila exited with code {self.proc.returncode}; its log:\n"
                               f"{self.log_tail()}")

    def wait_pool(self, timeout: float = POOL_TIMEOUT_S) -> float | None:
        """Seconds from start until Voilà logs that the classroom app's pool is full; None when no
        pool is configured for it (nothing pre-heated): the caller decides whether that is wrong."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self._check_alive()
            log = self.log()
            if re.search(rf"Kernel pool of {re.escape(NOTEBOOK)} is filled", log):
                return time.monotonic() - self.t_start
            if time.monotonic() - t0 > 20 and "Kernel started" not in log:
                return None
            time.sleep(0.25)
        raise RuntimeError(f"the kernel pool of {NOTEBOOK} was not full after {timeout} s; "
                           f"its log:\n{self.log_tail()}")

    def wait_quiet(self, timeout: float = POOL_TIMEOUT_S) -> float:
        """Seconds from start until the server and its kernels are quiet (the pool's kernels have
        run the notebook: Voilà's server runs it through nbclient, so the server is busy too):
        together they use less than 0.1 s of CPU in a second, twice in a row."""
        t0, quiet = time.monotonic(), 0

        def cpu(pids):
            return sum(cpu_seconds(p, with_children=False) or 0 for p in pids)

        while time.monotonic() - t0 < timeout:
            self._check_alive()
            pids = [self.proc.pid, *self.kernels().values()]
            c0 = cpu(pids)
            time.sleep(1)
            quiet = quiet + 1 if len(pids) > 1 and cpu(pids) - c0 < 0.1 else 0
            if quiet == 2:
                return time.monotonic() - self.t_start
        raise RuntimeError(f"the server and its kernels were still busy after {timeout} s")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, notebook: str = NOTEBOOK) -> str:
        return f"{self.base}/voila/render/{notebook}?token={self.token}"

    # --- the kernels (children of the server) ---
    def kernels(self) -> dict[str, int]:
        """kernel id → pid, for the kernel processes the server runs now."""
        if self.proc is None:
            return {}
        out = {}
        for pid in children(self.proc.pid):
            m = re.search(r"kernel-([0-9a-f-]{36})\.json", cmdline(pid))
            if m:
                out[m.group(1)] = pid
                self._kernel_pids.add(pid)
        return out

    def stop(self):
        if self.proc is None:
            return
        self.kernels_at_stop = set(self._kernel_pids)
        if self.proc.poll() is None:
            self.kernels_at_stop |= set(children(self.proc.pid))
        super().stop()              # SIGTERM to the group: Voilà shuts its kernels down
        # kernels live in their own sessions: end any the server left behind (by pid, ours only)
        deadline = time.monotonic() + 10
        for pid in self.kernels_at_stop:
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- /proc ---------------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()       # fields from 3 (state) on


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def children(ppid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None and int(st[1]) == ppid:
                out.append(int(d))
    return out


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pid: int, with_children: bool = True) -> float | None:
    """User + system CPU of a process (and of its children it has waited for, such as dot)."""
    st = _stat(pid)
    if st is None:
        return None
    ticks = int(st[11]) + int(st[12])                        # utime, stime
    if with_children:
        ticks += int(st[13]) + int(st[14])                   # cutime, cstime
    return ticks / CLK_TCK


def memory_mb(pid: int) -> tuple[float | None, float | None]:
    """(RSS, PSS) in MB. PSS shares the pages processes share (libraries) between them."""
    rss = pss = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


# --- the page -------------------------------------------------------------------------------------
class PageError(Exception):
    """The page a student got is not the working app (counted as a failed page)."""


def expected_outputs(notebook: Path = ROOT / "notebooks" / NOTEBOOK) -> tuple[int, int]:
    """(outputs, widget views) of the committed, executed notebook: a page must show at least as
    many outputs (Voilà drops an output it waited for too long) and at least one widget view."""
    nb = json.loads(notebook.read_text())
    outs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    views = sum(1 for o in outs if "application/vnd.jupyter.widget-view+json" in o.get("data", {}))
    return len(outs), max(1, views)


def read_page(html: str, expected: tuple[int, int]) -> tuple[str, list[str]]:
    """(kernel id, widget model ids in page order) of a complete page, else PageError."""
    for marker, what in [("There was an error when executing cell", "a cell raised an error"),
                         ("Cell execution timed out", "a cell timed out"),
                         ('data-mime-type="application/vnd.jupyter.stderr"', "stderr output")]:
        if marker in html:
            raise PageError(what)
    if "voila_finish()" not in html:
        raise PageError("the page is incomplete (no voila_finish)")
    m = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', html)
    if not m:
        raise PageError("no kernel id in the page")
    n_out = len(re.findall(r'class="jp-OutputArea-child[ "]', html))
    views = re.findall(r'application/vnd\.jupyter\.widget-view\+json":\s*\{"model_id":\s*"(\w+)"',
                       html)
    if n_out < expected[0] or len(views) < expected[1]:
        raise PageError(f"{n_out} outputs and {len(views)} widget views on the page, the notebook "
                        f"has {expected[0]} and {expected[1]} (an output was dropped)")
    return m.group(1), views


# --- the kernel protocol over Jupyter Server's websocket ----------------------------------------
# The subprotocol JupyterLab's services (and so Voilà's page) ask for: binary frames, each the
# channel and the message parts (header, parent header, metadata, content, buffers) with offsets.
WS_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def _encode(channel: str, msg: dict) -> bytes:
    from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
    parts = [json.dumps(msg[k]).encode()
             for k in ("header", "parent_header", "metadata", "content")]
    return serialize_msg_to_ws_v1(parts, channel)


def _decode(raw) -> dict:
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
    if isinstance(raw, str):                  # the legacy JSON protocol (not negotiated)
        return json.loads(raw)
    channel, parts = deserialize_msg_from_ws_v1(raw)
    msg = {k: json.loads(p) for k, p in zip(("header", "parent_header", "metadata", "content"),
                                            parts)}
    msg["channel"], msg["buffers"] = channel, parts[4:]
    return msg


def quickack(ws):
    """Acknowledge what was read at once (Linux). Jupyter Server leaves Nagle's algorithm on, so
    the kernel's next message (the graph after "busy") waits for this client's ACK, and Linux
    delays that ACK by up to 40 ms; Chromium showed no such stall here (frames 1–7 ms apart, with
    or without TCP_NODELAY on the server), so without this the client would add ~40 ms per click
    that a browser does not see."""
    sock = getattr(getattr(ws, "stream", None), "socket", None)
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


class Kernel:
    """One websocket to one kernel: sends shell messages, keeps the widget models up to date, and
    lets a caller wait for a message matching a predicate (registered before sending)."""

    def __init__(self, ws):
        self.ws = ws
        self.session = uuid.uuid4().hex
        self.models: dict[str, dict] = {}        # model id → state (updated as messages arrive)
        self.bytes_in = 0                         # every byte read from the websocket
        self._waiters: list[tuple] = []
        self.error: str | None = None
        self._reader = asyncio.ensure_future(self._read())

    def send(self, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg_id = uuid.uuid4().hex
        msg = {"header": {"msg_id": msg_id, "username": "student", "session": self.session,
                          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                          "msg_type": msg_type, "version": "5.3"},
               "parent_header": {}, "metadata": metadata or {}, "content": content}
        self.ws.write_message(_encode("shell", msg), binary=True)
        return msg_id

    def expect(self, pred) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return fut

    async def wait(self, fut: asyncio.Future, what: str, timeout: float = MSG_TIMEOUT_S):
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no {what} within {timeout:g} s") from None

    async def _read(self):
        while True:
            raw = await self.ws.read_message()
            quickack(self.ws)
            if raw is None:
                self.error = "the websocket closed"
                for _, fut in self._waiters:
                    if not fut.done():
                        fut.set_exception(ConnectionError(self.error))
                self._waiters.clear()
                return
            self.bytes_in += len(raw)
            msg = _decode(raw)
            t = time.perf_counter()
            self._apply(msg)
            for w in list(self._waiters):
                pred, fut = w
                if fut.done():
                    self._waiters.remove(w)
                else:
                    try:
                        hit = pred(msg)
                    except (KeyError, TypeError, AttributeError):
                        hit = False
                    if hit:
                        fut.set_result((t, msg))
                        self._waiters.remove(w)

    def _apply(self, msg: dict):
        if msg.get("channel") != "iopub":
            return
        kind, c = msg["header"]["msg_type"], msg.get("content", {})
        if kind == "comm_msg" and c.get("comm_id") in self.models:
            data = c.get("data", {})
            if data.get("method") in ("update", "echo_update"):
                self.models[c["comm_id"]].update(data.get("state", {}))
            elif data.get("method") == "custom" and "k" in data.get("content", {}):
                self.models[c["comm_id"]]["_k"] = data["content"]["k"]   # the graph's scene
        elif kind == "comm_open" and c.get("target_name") == "jupyter.widget":
            self.models[c["comm_id"]] = dict(c.get("data", {}).get("state", {}))
        elif kind == "comm_close":
            self.models.pop(c.get("comm_id"), None)

    # --- what the Voilà front end does ---
    async def kernel_info(self):
        fut = self.expect(lambda m: m["header"]["msg_type"] == "kernel_info_reply")
        self.send("kernel_info_request", {})
        await self.wait(fut, "kernel_info_reply")

    async def request_states(self) -> dict:
        """ipywidgets 8: the states of every widget in the kernel, through the control comm."""
        comm_id = uuid.uuid4().hex
        fut = self.expect(lambda m: m["header"]["msg_type"] == "comm_msg"
                          and m["content"].get("comm_id") == comm_id
                          and m["content"]["data"].get("method") == "update_states")
        self.send("comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget.control",
                                "data": {}}, metadata={"version": "1.0.0"})
        self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})
        _, msg = await self.wait(fut, "widget states (update_states)")
        self.send("comm_close", {"comm_id": comm_id, "data": {}})
        states = msg["content"]["data"]["states"]
        for mid, s in states.items():
            self.models[mid] = dict(s["state"])
        return states

    def idle(self, msg_id: str) -> asyncio.Future:
        return self.expect(lambda m: m["header"]["msg_type"] == "status"
                           and m["parent_header"].get("msg_id") == msg_id
                           and m["content"].get("execution_state") == "idle")

    def close(self):
        self._reader.cancel()
        self.ws.close()


def _ref(v) -> str | None:
    return v[len("IPY_MODEL_"):] if isinstance(v, str) and v.startswith("IPY_MODEL_") else None


class StepperView:
    """The Stepper's parts, found from its root model by their CSS classes: the bar and the graph
    (anywidgets), and the reveal button."""

    def __init__(self, kernel: Kernel, root: str):
        self.k, self.root = kernel, root
        self.parent: dict[str, str] = {}
        self.by_class: dict[str, str] = {}
        todo = [root]
        while todo:
            mid = todo.pop(0)
            st = kernel.models.get(mid, {})
            for cls in st.get("_dom_classes", ()):
                self.by_class.setdefault(cls, mid)
            for child in st.get("children", ()):
                cid = _ref(child)
                if cid and cid not in self.parent:
                    self.parent[cid] = mid
                    todo.append(cid)
        for cls in ("bpv-bar-view", "bpv-graph-view"):
            if cls not in self.by_class:
                raise PageError(f"the Stepper has no .{cls} part")

    def part(self, cls: str) -> str | None:
        return self.by_class.get(cls)

    def shown(self, mid: str) -> bool:
        """Displayed: neither it nor any container above it has display none (offsetParent)."""
        while mid is not None:
            lay = self.k.models.get(_ref(self.k.models.get(mid, {}).get("layout")) or "", {})
            if lay.get("display") == "none" or lay.get("visibility") == "hidden":
                return False
            mid = self.parent.get(mid)
        return True

    def step(self) -> int | None:
        """The step of the last scene the graph received."""
        return self.k.models[self.part("bpv-graph-view")].get("_k")

    def n(self) -> int:
        return int(self.k.models[self.part("bpv-bar-view")]["n"])

    def tell(self, cls: str, content: dict) -> str:
        """A message from a part's front end to its model in the kernel."""
        return self.k.send("comm_msg", {"comm_id": self.part(cls), "data": {
            "method": "custom", "content": content}})

    def set(self, cls: str, value: str) -> str:
        """A Text's new value, as its front end sends it (on Enter, or when the box is left)."""
        mid = self.part(cls)
        self.k.models[mid]["value"] = value
        return self.k.send("comm_msg", {"comm_id": mid, "data": {
            "method": "update", "state": {"value": value}, "buffer_paths": []}})

    def value(self, cls: str) -> str:
        return self.k.models.get(self.part(cls), {}).get("value", "")


def graph_at(view: StepperView, step: int | None = None):
    """The graph's scene message (for ``step``, or any)."""
    graph = view.part("bpv-graph-view")
    return lambda m: (m["header"]["msg_type"] == "comm_msg"
                      and m["content"].get("comm_id") == graph
                      and m["content"]["data"].get("method") == "custom"
                      and (step is None or m["content"]["data"]["content"].get("k") == step))


def value_of(view: StepperView, cls: str, has: str | tuple = ""):
    """A part's new value from the kernel (holding ``has``, or one of them)."""
    mid, has = view.part(cls), (has,) if isinstance(has, str) else has
    return lambda m: (m["header"]["msg_type"] == "comm_msg"
                      and m["content"].get("comm_id") == mid
                      and m["content"]["data"].get("method") in ("update", "echo_update")
                      and any(h in m["content"]["data"]["state"].get("value", "") for h in has))


# --- --class: what the students answer ---------------------------------------------------------
# what a student does at each prediction, by student and prediction (cycled): the attempts, then
# "right" (checked right: the step is shown) or "reveal"
PLANS = (("right",), ("wrong shape", "right"), ("reveal",), ("wrong value", "reveal"))
OUTCOME = {"right": "right first time", "wrong shape": "wrong", "wrong value": "wrong",
           "reveal": "revealed"}


class AnswerKey:
    """The texts a student types for each step of the classroom app's Stepper (its first code
    cell, the teacher's: run here up to the Stepper, whose arguments make the same pass), and the
    fingerprint its events carry (widgets/classjoin.fingerprint of that pass)."""

    def __init__(self, notebook: Path):
        import numpy as np
        from backpropviz.teach.stepper import StepperModel
        from backpropviz.widgets.classjoin import fingerprint
        self.np = np
        nb = json.loads(Path(notebook).read_text())
        cell = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        ns: dict = {}
        for stmt in ast.parse(cell).body:
            call = getattr(stmt, "value", None)
            if isinstance(call, ast.Call) and getattr(call.func, "attr",
                                                      getattr(call.func, "id", "")) == "Stepper":
                args = [eval(compile(ast.Expression(a), "<cell>", "eval"), ns)
                        for a in call.args]
                self.trace = StepperModel(*args).module_trace
                self.fingerprint = fingerprint(self.trace)
                return
            if not isinstance(stmt, ast.Expr):
                exec(compile(ast.Module([stmt], []), "<cell>", "exec"), ns)  # noqa: S102
        raise RuntimeError(f"{notebook}: no Stepper in its first code cell")

    def text(self, k: int, what: str) -> str:
        want = self.np.asarray(self.trace[self.trace.specs[k - 1].writes], dtype=float)
        typed = {"right": want, "wrong value": want + 1.0,
                 "wrong shape": self.np.zeros(want.size + 1)}[what]
        return json.dumps(typed.tolist())


# --- a student ------------------------------------------------------------------------------------
class Student:
    """One student: open the page, connect, wait for the widgets, click through one pass.
    With ``key`` (--class) they answer each prediction as ``PLANS`` says (student ``index``)
    instead of revealing it; with ``code`` they join that class first."""

    def __init__(self, server: ClassroomServer, expected: tuple[int, int], think: float = 0.0,
                 view: str = "modules", circuit_steps: int = 40, key: AnswerKey | None = None,
                 index: int = 0, code: str | None = None):
        self.server, self.expected, self.think = server, expected, think
        self.granularity, self.circuit_steps = view, circuit_steps
        self.key, self.index, self.code = key, index, code
        self.name = f"student {index + 1:02d}"     # a pseudonym, as a student types one
        self.by_kind: dict[str, list[float]] = {}   # what was done → its latencies (ms)
        self.predictions = 0
        self.events: list[tuple[str, int]] = []   # (outcome, step) each attempt should send
        self.join_ms: float | None = None         # join → the row's status says joined
        self.link: tuple[int, int] | None = None  # (stored, sent), as the join row last said
        self.link_s: float | None = None          # end of the pass → the link says all stored
        self.switch_s: float | None = None        # modules → scalar circuit, to its first scene
        self.bytes: list[int] = []                # bytes the kernel sent per click
        self.kernel_id: str | None = None
        # seconds from arrival: first byte, whole page, websocket open, kernel_info reply, ready
        self.t_first = self.t_page = self.t_ws = self.t_info = self.t_ready = None
        self.failed_page: str | None = None       # why the page is not the working app
        self.failed_pass: str | None = None       # why the pass did not finish
        self.latencies: list[float] = []          # click → graph update (ms)
        self.clicked_at: list[float] = []         # when (s from arrival)
        self.to_idle: list[float] = []            # click → kernel idle (ms)
        self.steps: list[int] = []
        self.pid = None
        self.cpu_open = self.cpu_pass = None
        self.mem_open = self.mem_pass = (None, None)
        self.kernel: Kernel | None = None
        self.view: StepperView | None = None

    async def open(self, t0: float):
        self.t_arrival = t0
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError
        from tornado.websocket import websocket_connect
        try:
            try:
                chunks = []

                def chunk(data: bytes):
                    if self.t_first is None:
                        self.t_first = time.monotonic() - t0
                    chunks.append(data)

                await AsyncHTTPClient().fetch(self.server.url(), connect_timeout=30,
                                              request_timeout=PAGE_TIMEOUT_S,
                                              streaming_callback=chunk)
            except HTTPClientError as e:
                raise PageError(f"HTTP {e.code}") from None
            except (OSError, TimeoutError) as e:
                raise PageError(f"no page: {e}") from None
            self.kernel_id, views = read_page(b"".join(chunks).decode("utf-8", "replace"),
                                              self.expected)
            self.t_page = time.monotonic() - t0
            ws_url = (f"ws://127.0.0.1:{self.server.port}/api/kernels/{self.kernel_id}/channels"
                      f"?session_id={uuid.uuid4().hex}&token={self.server.token}")
            try:
                ws = await asyncio.wait_for(websocket_connect(
                    ws_url, max_message_size=64 << 20, subprotocols=[WS_PROTOCOL]),
                                            MSG_TIMEOUT_S)
            except Exception as e:      # noqa: BLE001 — any failure to connect fails the page
                raise PageError(f"kernel websocket: {type(e).__name__}: {e}") from None
            self.t_ws = time.monotonic() - t0
            self.kernel = Kernel(ws)
            await self.kernel.kernel_info()
            self.t_info = time.monotonic() - t0
            states = await self.kernel.request_states()
            missing = [v for v in views if v not in states]
            if missing:
                raise PageError(f"{len(missing)} of the page's widgets are not in the kernel")
            root = next((v for v in views if "bpv-stepper" in
                         states[v]["state"].get("_dom_classes", ())), None)
            if root is None:
                raise PageError("no Stepper among the page's widgets")
            self.view = StepperView(self.kernel, root)
            scene = self.kernel.expect(graph_at(self.view))
            self.view.tell("bpv-graph-view", {"hello": 1})
            await self.kernel.wait(scene, "the graph's scene")
            self.t_ready = time.monotonic() - t0
        except (PageError, TimeoutError, ConnectionError) as e:
            self.failed_page = str(e)

    async def click(self, cls: str) -> int:
        """Click a button of the Stepper; returns the new step once the graph shows it."""
        v = self.view
        before = v.step()

        def send():
            if cls == "bpv-next":
                return v.tell("bpv-bar-view", {"move": before + 1, "how": "button"})
            return v.tell(cls, {"event": "click"})

        return await self._act({"bpv-next": "step", "bpv-reveal": "reveal"}.get(cls, cls), send,
                               graph_at(v, before + 1), f"graph update to step {before + 1}")

    async def answer(self, what: str) -> int:
        """Type a prediction of the next step (``what``: "right", "wrong value", "wrong shape"),
        then press "check", as a browser sends it: the box's value when it is left, then the
        click. Right: until the graph shows the step; wrong: until the feedback says ✘."""
        v = self.view
        k = v.step() + 1
        text = self.key.text(k, what)

        def send():
            v.set("bpv-answer", text)
            return v.tell("bpv-check", {"event": "click"})

        done = graph_at(v, k) if what == "right" else value_of(v, "bpv-feedback", "✘")
        return await self._act(what, send, done, f"the check of a {what} answer to step {k}")

    async def _act(self, kind: str, send, done, what: str) -> int:
        """Send an action; its latency is until a message ``done`` accepts (a graph update: also
        in ``latencies``, click → graph); then wait for the kernel to be idle. The step after."""
        k, v = self.kernel, self.view
        fut = k.expect(done)
        t0 = time.perf_counter()
        b0 = k.bytes_in
        msg_id = send()
        idle = k.idle(msg_id)
        t1, msg = await k.wait(fut, f"{what} after {kind}")
        ms = (t1 - t0) * 1000
        self.by_kind.setdefault(kind, []).append(ms)
        if msg["content"]["data"].get("method") == "custom":         # the graph's scene
            self.latencies.append(ms)
            self.clicked_at.append(time.monotonic() - self.t_arrival)  # from this student's arrival
        t2, _ = await k.wait(idle, f"idle kernel after {kind}")
        self.to_idle.append((t2 - t0) * 1000)
        self.bytes.append(k.bytes_in - b0)
        return v.step()

    async def predict(self) -> int:
        """The next step's prediction, as this student's plan for it says."""
        plan = PLANS[(self.index + self.predictions) % len(PLANS)]
        self.predictions += 1
        k = self.view.step() + 1
        for what in plan:
            step = await (self.click("bpv-reveal") if what == "reveal" else self.answer(what))
            # an attempt at a step not yet revealed: one event each
            outcome = OUTCOME[what]
            if what == "right" and len(plan) > 1:
                outcome = "right after a hint"
            self.events.append((outcome, k))
        return step

    async def join(self):
        """Join the class as a browser does: the code and the name typed (each box's value
        sent when it is left), then "join"; until the row's status says joined."""
        k, v = self.kernel, self.view
        try:
            row = v.part("bpv-class")
            if row is None or not v.shown(row):
                raise RuntimeError("the Stepper shows no join row: its kernel has no class")
            v.set("bpv-class-code", self.code)
            v.set("bpv-class-name", self.name)
            said = k.expect(value_of(v, "bpv-class-status", (f"class {self.code} as",
                                                             "not joined")))
            t0 = time.perf_counter()
            idle = k.idle(v.tell("bpv-class-join", {"event": "click"}))
            t1, msg = await k.wait(said, "the join row's status")
            status = msg["content"]["data"]["state"]["value"]
            if "not joined" in status:
                raise RuntimeError(f"not joined: {re.sub('<[^>]+>', '', status)[:200]}")
            self.join_ms = (t1 - t0) * 1000
            await k.wait(idle, "idle kernel after join")
        except (TimeoutError, ConnectionError, RuntimeError, KeyError) as e:
            self.failed_pass = f"join: {type(e).__name__}: {e}"

    async def link_done(self, timeout: float = LINK_S):
        """After the pass: wait until the join row says every answer sent is received (its link's
        thread stores them); keep what it last said."""
        t0 = time.monotonic()
        while True:
            m = re.search(r"(\d+) of (\d+) answers? received", self.view.value("bpv-class-status"))
            self.link = (int(m.group(1)), int(m.group(2))) if m else None
            if (self.link and self.link[0] >= self.link[1] >= len(self.events)) or \
                    time.monotonic() - t0 > timeout:
                break
            await asyncio.sleep(0.1)
        self.link_s = time.monotonic() - t0

    async def switch(self):
        """To the scalar circuit, as the view menu does: the time until its first scene."""
        k, v = self.kernel, self.view
        scene = k.expect(graph_at(v))       # the next scene: the circuit's whole first one
        bar = v.part("bpv-bar-view")
        counted = k.expect(lambda m: m["header"]["msg_type"] == "comm_msg"   # and its length
                           and m["content"].get("comm_id") == bar
                           and "n" in m["content"]["data"].get("state", {}))
        t0 = time.perf_counter()
        v.tell("bpv-bar-view", {"granularity": "scalar circuit"})
        t1, _ = await k.wait(scene, "the scalar circuit's first scene")
        await k.wait(counted, "the circuit's number of steps")
        self.switch_s = t1 - t0

    async def one_pass(self):
        v = self.view
        try:
            if self.granularity == "circuit":
                await self.switch()
            n = v.n()
            if self.granularity == "circuit":
                n = min(n, v.step() + self.circuit_steps)
            while (step := v.step()) is not None and step < n:
                reveal = v.part("bpv-reveal")
                if not (reveal and v.shown(reveal)):
                    self.steps.append(await self.click("bpv-next"))
                elif self.key is not None:
                    self.steps.append(await self.predict())
                else:
                    self.steps.append(await self.click("bpv-reveal"))
                if self.think:
                    await asyncio.sleep(self.think)
            if v.step() != n:
                raise RuntimeError(f"the graph shows step {v.step()}, not {n}")
        except (TimeoutError, ConnectionError, RuntimeError, KeyError) as e:
            self.failed_pass = f"{type(e).__name__}: {e}"

    def close(self):
        if self.kernel is not None:
            self.kernel.close()


# --- a round of N students ------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


async def _round(server: ClassroomServer, n: int, think: float, spread: float,
                 expected: tuple[int, int], view: str = "modules", circuit_steps: int = 40,
                 key: AnswerKey | None = None, code: str | None = None) -> list[Student]:
    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure(None, max_clients=max(10, n))
    students = [Student(server, expected, think, view, circuit_steps, key, i, code)
                for i in range(n)]
    t0 = time.monotonic()
    pids: dict[str, int] = {}

    async def attend(i: int, s: Student):
        await asyncio.sleep(spread * i / n)            # arrival: together, or spread over `spread`
        await s.open(time.monotonic())
        if s.failed_page is not None:
            return
        if s.kernel_id not in pids:
            pids.update(server.kernels())
        s.pid = pids.get(s.kernel_id)
        if s.pid:                                      # memory and CPU once the page is ready
            s.cpu_open, s.mem_open = cpu_seconds(s.pid), memory_mb(s.pid)
        if s.code is not None:
            await s.join()
            if s.failed_pass is not None:
                return
        await s.one_pass()
        if s.code is not None:
            await s.link_done()
        if s.pid:
            cpu = cpu_seconds(s.pid)
            s.cpu_pass = None if cpu is None or s.cpu_open is None else cpu - s.cpu_open
            s.mem_pass = memory_mb(s.pid)
        s.arrived = s.t_arrival - t0

    try:
        await asyncio.gather(*(attend(i, s) for i, s in enumerate(students)))
    finally:
        for s in students:
            s.close()
    return students


def run_round(n: int, think: float = 0.0, spread: float = 0.0, extra_args: list[str] = (),
              view: str = "modules", circuit_steps: int = 40, predict: bool = False,
              with_class: bool = False) -> dict:
    """One round of n students. ``predict``: they answer the predictions (PLANS) rather than
    reveal them; ``with_class``: in a class, which they join, and which a teacher watches."""
    if not 1 <= n <= MAX_STUDENTS:
        raise SystemExit(f"--students: 1 to {MAX_STUDENTS}")
    tmp = Path(tempfile.mkdtemp(prefix="bpv-bench-classroom-"))
    class_dir = code = teacher = watch = None
    if with_class:                      # a class folder with one class open, as the CLI makes it
        from backpropviz.live.store import ClassStore
        class_dir = tmp / "class"
        store = ClassStore(class_dir, create=True)
        code = store.open_class()
        store.close()
    server = ClassroomServer(tmp, [*class_args(CLASS_SIZE), *extra_args],   # --students 30
                             class_dir=class_dir)
    try:
        server.start()
        expected = expected_outputs(server.lessons / NOTEBOOK)
        key = AnswerKey(server.lessons / NOTEBOOK) if predict else None
        t_pool = server.wait_pool()
        # the teacher started the server before the class: the pool's kernels have run the notebook
        t_warm = server.wait_quiet() if t_pool is not None else None
        if with_class:                  # ... and opened the class's live view
            teacher = TeacherServer(tmp / "teacher", class_dir).start()
            watch = TeacherWatch(teacher.url(), tmp / "teacher").start()
            cpu_teacher0, cpu_browser0 = tree_cpu(teacher.proc.pid), tree_cpu(watch.proc.pid)
        idle_kernels = server.kernels()
        pool_rss = [memory_mb(p)[0] for p in idle_kernels.values()]
        cpu_server0 = cpu_seconds(server.proc.pid, with_children=False)
        load = os.getloadavg()[0]       # what else this machine runs (other jobs skew figures)
        students = asyncio.run(asyncio.wait_for(
            _round(server, n, think, spread, expected, view, circuit_steps, key, code),
            RUN_TIMEOUT_S))
        cpu_server = cpu_seconds(server.proc.pid, with_children=False) - cpu_server0
        after = server.kernels()
        log = server.log()
        klass = None
        if with_class:
            events = settled_events(class_dir, code, sum(len(s.events) for s in students))
            cpu = {"teacher_server_cpu_s": tree_cpu(teacher.proc.pid) - cpu_teacher0,
                   "teacher_browser_cpu_s": tree_cpu(watch.proc.pid) - cpu_browser0}
            try:
                seen = watch.stop(len(events))
            except RuntimeError as e:           # no figures from the teacher's page: said below
                seen = {"error": str(e)}
            klass = class_figures(students, events, seen, key, code) | cpu
    finally:
        if watch is not None:
            watch.kill()
        if teacher is not None:
            teacher.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ok = [s for s in students if s.failed_page is None]
    lat = [x for s in ok for x in s.latencies]
    preheated = set(re.findall(r"Using pre-heated kernel: ([0-9a-f-]{36})", log))
    ready = [s.t_ready for s in ok]
    sizes = [b for s in ok for b in s.bytes]
    switch = [s.switch_s for s in ok if s.switch_s is not None]
    return {
        "students": n, "view": view, "think_s": think, "spread_s": spread,
        "server_up_s": server.t_up,
        "bytes_per_click": {"p50": pct(sizes, .5), "max": max(sizes, default=None)},
        "switch_s": {"n": len(switch), "p50": pct(switch, .5), "p90": pct(switch, .9),
                     "max": max(switch, default=None)},
        "pool_started_s": t_pool, "pool_warm_s": t_warm, "pool_kernels": len(idle_kernels),
        "pool_kernel_rss_mb": statistics.median(pool_rss) if pool_rss else None,
        "preheated_pages": log.count("Using pre-heated kernel"),
        "ready_s": {"p50": pct(ready, .5), "p90": pct(ready, .9), "max": max(ready, default=None)},
        "page_s": _stats([s.t_page for s in ok]),
        "click_ms": {"n": len(lat), "p50": pct(lat, .5), "p90": pct(lat, .9),
                     "max": max(lat, default=None)},
        "clicks_per_pass": statistics.median([len(s.steps) for s in ok]) if ok else None,
        "failed_pages": [s.failed_page for s in students if s.failed_page],
        "failed_passes": [s.failed_pass for s in ok if s.failed_pass],
        "predict": predict, "class": klass,
        "by_kind_ms": {kind: _pcts([x for s in ok for x in s.by_kind.get(kind, ())])
                       for kind in ("step", "right", "wrong shape", "wrong value", "reveal")},
        "kernel_cpu_pass_s": _stats([s.cpu_pass for s in ok]),
        "kernel_rss_open_mb": _stats([s.mem_open[0] for s in ok]),
        "kernel_rss_pass_mb": _stats([s.mem_pass[0] for s in ok]),
        "kernel_pss_pass_mb": _stats([s.mem_pass[1] for s in ok]),
        "server_cpu_s": cpu_server, "load_1min_before": load,
        "kernels_at_end": len(after),
        "iopub_timeouts_in_log": log.count("Timeout waiting for IOPub output"),
        "address_in_use_in_log": log.count("Address already in use"),
        "per_student": [{"first_byte_s": s.t_first, "page_s": s.t_page, "ws_s": s.t_ws,
                         "kernel_info_s": s.t_info, "ready_s": s.t_ready,
                         "preheated": s.kernel_id in preheated, "failed_page": s.failed_page,
                         "failed_pass": s.failed_pass, "clicks_ms": s.latencies,
                         "arrived_s": getattr(s, "arrived", None), "clicked_at_s": s.clicked_at,
                         "cpu_pass_s": s.cpu_pass, "rss_open_mb": s.mem_open[0],
                         "rss_pass_mb": s.mem_pass[0]} for s in students],
    }


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of every process below it now (and of those they waited
    for): a server with its kernels, or the watcher with its Chromium."""
    below: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        st = _stat(int(d)) if d.isdigit() else None
        if st is not None:
            below.setdefault(int(st[1]), []).append(int(d))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu_seconds(p) or 0.0
        todo += below.get(p, [])
    return total


def settled_events(class_dir: Path, code: str, expected: int) -> list[dict]:
    """The class's events once the store has them all (and took no more for 1 s), or once it took
    none for 5 s, or after SETTLE_S: whichever comes first."""
    from backpropviz.live.store import ClassStore
    store = ClassStore(class_dir)
    try:
        t0 = since = time.monotonic()
        last = -1
        while time.monotonic() - t0 < SETTLE_S:
            n = store.count(code)
            if n != last:
                last, since = n, time.monotonic()
            quiet = time.monotonic() - since
            if (n >= expected and quiet >= 1) or quiet >= 5:
                break
            time.sleep(0.25)
        return store.events(code)
    finally:
        store.close()


def class_figures(students: list[Student], events: list[dict], seen: dict, key: AnswerKey,
                  code: str) -> dict:
    """What the students' clicks should have stored against what the store holds, and how long
    the teacher's view took to count each event."""
    from collections import Counter
    ok = [s for s in students if s.failed_page is None]
    by_student: dict[str, list[dict]] = {}
    for e in events:                                   # the store's order: as they arrived
        by_student.setdefault(e["student"], []).append(e)
    lost = extra = 0
    out_of_order = []
    for s in ok:
        got = [(e["outcome"], e["step"]) for e in by_student.pop(s.name, [])]
        lost += max(0, len(s.events) - len(got))
        extra += max(0, len(got) - len(s.events))
        if got != s.events and len(got) == len(s.events):
            out_of_order.append(s.name)
    extra += sum(len(v) for v in by_student.values())  # events of no student of the round
    latency, unseen = seen_latency(events, seen.get("noted", []))
    return {
        "code": code,
        "events_expected": sum(len(s.events) for s in ok),
        "events_stored": len(events), "lost": lost, "extra": extra,
        "not_as_clicked": out_of_order,        # same number, other outcomes or steps
        "outcomes_expected": dict(Counter(o for s in ok for o, _ in s.events)),
        "outcomes_stored": dict(Counter(e["outcome"] for e in events)),
        "other_fingerprint": sum(e["fingerprint"] != key.fingerprint for e in events),
        "other_code": sum(e["code"] != code for e in events),
        "link_sent": sum(s.link[1] for s in ok if s.link),
        "link_stored": sum(s.link[0] for s in ok if s.link),
        "link_flush_s": _pcts([s.link_s for s in ok if s.link_s is not None]),
        "join_ms": _pcts([s.join_ms for s in ok if s.join_ms is not None]),
        "joined": sum(s.join_ms is not None for s in ok),
        "teacher_s": _pcts(latency), "teacher_unseen": unseen,
        "teacher_final": seen.get("final"), "teacher_title": seen.get("title"),
        "teacher_updates": len(seen.get("noted", [])), "teacher_error": seen.get("error"),
    }


def _pcts(values) -> dict:
    v = [x for x in values if x is not None]
    return {"n": len(v), "p50": pct(v, .5), "p90": pct(v, .9), "max": max(v, default=None)}


def _stats(values) -> dict:
    v = [x for x in values if x is not None]
    return {"n": len(v), "median": statistics.median(v) if v else None, "max": max(v, default=None)}


def _f(x, fmt="{:.2f}"):
    return "–" if x is None else fmt.format(x)


def table(rows: list[dict]) -> str:
    out = ["| view | students | ready p50 / p90 / max (s) | switch to circuit p50 / p90 (s) "
           "| click→graph p50 / p90 / max (ms) | bytes per click p50 / max (KB) "
           "| failed pages | failed passes | kernel CPU per pass (s) "
           "| kernel RSS after opening / after a pass (MB) | kernel PSS after a pass (MB) "
           "| server CPU per student (s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rd, c, sw, by = r["ready_s"], r["click_ms"], r["switch_s"], r["bytes_per_click"]
        kb = lambda x: None if x is None else x / 1000
        out.append(
            f"| {r['view']}{' + class' if r.get('class') else ''} | {r['students']} "
            f"| {_f(rd['p50'])} / {_f(rd['p90'])} / {_f(rd['max'])} "
            f"| {_f(sw['p50'])} / {_f(sw['p90'])} "
            f"| {_f(c['p50'], '{:.0f}')} / {_f(c['p90'], '{:.0f}')} / {_f(c['max'], '{:.0f}')} "
            f"| {_f(kb(by['p50']), '{:.1f}')} / {_f(kb(by['max']), '{:.1f}')} "
            f"| {len(r['failed_pages'])} | {len(r['failed_passes'])} "
            f"| {_f(r['kernel_cpu_pass_s']['median'])} "
            f"| {_f(r['kernel_rss_open_mb']['median'], '{:.0f}')} / "
            f"{_f(r['kernel_rss_pass_mb']['median'], '{:.0f}')} "
            f"| {_f(r['kernel_pss_pass_mb']['median'], '{:.0f}')} "
            f"| {_f(r['server_cpu_s'] / r['students'], '{:.2f}')} |")
    return "\n".join(out)


def notes(r: dict) -> str:
    return (f"{r['students']} students{' in a class' if r.get('class') else ''}: pool of "
            f"{r['pool_kernels']} kernels started "
            f"{_f(r['pool_started_s'], '{:.1f}')} s and quiet {_f(r['pool_warm_s'], '{:.1f}')} s "
            f"after the server started ({_f(r['pool_kernel_rss_mb'], '{:.0f}')} MB RSS each); "
            f"{r['preheated_pages']} pages from pre-heated kernels; page p50 "
            f"{_f(r['page_s']['median'] and r['page_s']['median'] * 1000, '{:.0f}')} ms; "
            f"{_f(r['clicks_per_pass'], '{:.0f}')} clicks per pass; "
            f"{r['kernels_at_end']} kernels running at the end; load average "
            f"{r['load_1min_before']:.2f} before the students came; "
            f"IOPub timeouts {r['iopub_timeouts_in_log']}, 'Address already in use' "
            f"{r['address_in_use_in_log']}" +
            (f"; failed: {sorted(set(r['failed_pages'] + r['failed_passes']))[:4]}"
             if r["failed_pages"] or r["failed_passes"] else ""))


def class_table(pairs: list[tuple[dict, dict]]) -> str:
    """--class: each N's round without a class beside the same round with one."""
    def ms(d):
        return f"{_f(d['p50'], '{:.0f}')} / {_f(d['p90'], '{:.0f}')} / {_f(d['max'], '{:.0f}')}"

    def sec(d):
        return f"{_f(d['p50'])} / {_f(d['p90'])} / {_f(d['max'])}"

    out = []
    for plain, klass in pairs:
        c = klass["class"]
        t = c["teacher_s"]
        met = "–" if t["p90"] is None else ("met" if t["p90"] <= 2.0 else "MISSED")
        rows = [
            ("students: pages / passes done", *(
                (f"{r['students'] - len(r['failed_pages'])} / "
                 f"{r['students'] - len(r['failed_pages']) - len(r['failed_passes'])}")
                for r in (plain, klass))),
            ("every click → graph, p50 / p90 / max (ms)", ms(plain["click_ms"]),
             ms(klass["click_ms"])),
            *((f"… {kind} → {'feedback' if 'wrong' in kind else 'graph'} "
               + f"(n = {klass['by_kind_ms'][kind]['n']})",
               ms(plain["by_kind_ms"][kind]), ms(klass["by_kind_ms"][kind]))
              for kind in ("step", "right", "wrong shape", "wrong value", "reveal")),
            ("join → status says joined, p50 / p90 / max (ms)", "–", ms(c["join_ms"])),
            ("kernel RSS after the pass, median / max (MB)", *(
                (f"{_f(r['kernel_rss_pass_mb']['median'], '{:.1f}')} / "
                 f"{_f(r['kernel_rss_pass_mb']['max'], '{:.1f}')}") for r in (plain, klass))),
            ("kernel CPU per pass, median (s)", *(_f(r["kernel_cpu_pass_s"]["median"])
                                                  for r in (plain, klass))),
            ("events the clicks should send", "–", str(c["events_expected"])),
            ("… the links said sent / received", "–", f"{c['link_sent']} / {c['link_stored']}"),
            ("events stored", "–", str(c["events_stored"])),
            ("events lost / extra / not as clicked", "–",
             f"{c['lost']} / {c['extra']} / {len(c['not_as_clicked'])}"),
            ("end of pass → link says all received, p50 / max (s)", "–",
             f"{_f(c['link_flush_s']['p50'])} / {_f(c['link_flush_s']['max'])}"),
            (f"teacher: stored → title counts it, p50 / p90 / max (s) (p90 ≤ 2 s: {met})",
             "–", sec(t)),
            ("teacher: events never counted / title updates noted", "–",
             f"{c['teacher_unseen']} / {c['teacher_updates']}"),
            ("teacher: Voilà + kernel CPU / Chromium CPU in the round (s)", "–",
             f"{_f(c['teacher_server_cpu_s'])} / {_f(c['teacher_browser_cpu_s'])}"),
        ]
        out += [(f"\n{plain['students']} students, predict mode, think {plain['think_s']:g} s "
                 f"(class {c['code']}):\n"),
                "| figure | without a class | with a class |", "|---|---:|---:|"]
        out += [f"| {a} | {b} | {k} |" for a, b, k in rows]
    return "\n".join(out)


def failures(rows: list[dict]) -> list[str]:
    """--class: why the run fails (events lost or not as clicked, a teacher who did not see
    them, students who could not finish)."""
    out = []
    for r in rows:
        c, n = r.get("class"), r["students"]
        if r.get("predict") and (r["failed_pages"] or r["failed_passes"]):
            out.append(f"{n} students{' with a class' if c else ''}: "
                       f"{len(r['failed_pages'])} failed pages, {len(r['failed_passes'])} failed "
                       f"passes: {sorted(set(r['failed_pages'] + r['failed_passes']))[:3]}")
        if not c:
            continue
        if c["lost"] or c["extra"] or c["not_as_clicked"]:
            out.append(f"{n} students: {c['lost']} events lost, {c['extra']} extra, "
                       f"{len(c['not_as_clicked'])} students' events not as clicked")
        if c["other_fingerprint"] or c["other_code"]:
            out.append(f"{n} students: {c['other_fingerprint']} events of another network, "
                       f"{c['other_code']} of another class")
        if c["teacher_error"] or c["teacher_unseen"] or not c["teacher_final"]:
            out.append(f"{n} students: the teacher's view counted {c['teacher_title']!r}: "
                       f"{c['teacher_unseen']} events never counted"
                       + (f" ({c['teacher_error'][:300]})" if c["teacher_error"] else ""))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, nargs="+", default=None,
                    help="class sizes, one round each (default 1 10 30; with --class, 30)")
    ap.add_argument("--think", type=float, default=0.0,
                    help="seconds a student waits after each graph update "
                         "(default 0: click at once)")
    ap.add_argument("--spread", type=float, default=0.0,
                    help="students arrive evenly over this many seconds (default 0: together)")
    ap.add_argument("--view", choices=["modules", "circuit", "both"], default="modules",
                    help="the module view's whole pass, or the scalar circuit (switch, then "
                         "--circuit-steps steps), or both rounds")
    ap.add_argument("--circuit-steps", type=int, default=40)
    ap.add_argument("--class", dest="with_class", action="store_true",
                    help="answer every prediction, without a class and then in a class with a "
                         "teacher watching: events stored, lost, and the teacher's delay")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    ap.add_argument("voila_args", nargs="*",
                    help="after --: extra voila arguments, as ./dev voila passes them on")
    a = ap.parse_args(argv)
    a.students = a.students or ([CLASS_SIZE] if a.with_class else [1, 10, 30])
    if any(not 1 <= n <= MAX_STUDENTS for n in a.students):
        ap.error(f"--students: 1 to {MAX_STUDENTS}")
    if a.with_class and a.view != "modules":
        ap.error("--class answers the module view's predictions: --view modules")
    rows = []
    views = ["modules", "circuit"] if a.view == "both" else [a.view]
    rounds = [(v, n, klass) for v in views for n in a.students
              for klass in ([False, True] if a.with_class else [False])]
    for view, n, klass in rounds:
        print(f"[bench_classroom] {n} student(s), {view}"
              f"{', predict mode' if a.with_class else ''}{', in a class' if klass else ''} ...",
              file=sys.stderr, flush=True)
        rows.append(run_round(n, a.think, a.spread, a.voila_args, view,
                              max(1, min(a.circuit_steps, 2000)), predict=a.with_class,
                              with_class=klass))
        print("[bench_classroom]   " + notes(rows[-1]), file=sys.stderr, flush=True)
    print(f"\nClassroom app (notebooks/{NOTEBOOK}) served as `./dev voila --students "
          f"{CLASS_SIZE}` serves it (python "
          f"{' '.join(dev_voila_command()[:-1] + ['DIR'] + class_args(CLASS_SIZE) + a.voila_args)}"
          f"{' [--class CLASS_DIR]' if a.with_class else ''}); "
          f"{os.cpu_count()} cores, Python "
          f"{platform.python_version()}; once the pool is warm the students arrive "
          f"{'together' if not a.spread else f'evenly over {a.spread:g} s'}, "
          f"think time {a.think:g} s; per-student figures are medians.\n")
    print(table(rows))
    print()
    for r in rows:
        print("* " + notes(r))
    if a.with_class:
        print(class_table([(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]))
    failed = failures(rows)
    for why in failed:
        print(f"FAILED: {why}")
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return rows, failed


if __name__ == "__main__":
    sys.exit(1 if main()[1] else 0)
