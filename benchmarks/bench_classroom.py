"""A class on one Voilà server: N students open the classroom app and click through one pass.

Run:  python benchmarks/bench_classroom.py [--students 1 10 30] [--think S] [--spread S]
                                           [--out FILE.json] [-- EXTRA VOILA ARGUMENTS]
      (prints a Markdown table; figures, not a test; about 2 minutes per N on 2 cores)

For each N a fresh Voilà server is started exactly as ``./dev voila --students 30`` starts it: set
up for a class of 30 whatever N arrive (the arguments are read from the ``voila)`` case of ./dev,
so the shipped ``classroom/voila.json`` is used, and the pool of 30 is passed as ``--students``
passes it, ``class_args``), on 127.0.0.1, a free port, a token and temporary Jupyter directories.
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

The student client (``Student``, ``ClassroomServer``) is also used by
tests/test_classroom_server.py.
"""
from __future__ import annotations

import argparse
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
from browser_util import Server  # noqa: E402  (the one server harness)
NOTEBOOK = "06_classroom.ipynb"          # the classroom app, relative to the served notebooks/
MAX_STUDENTS = 60
SERVER_TIMEOUT_S = 60                    # server answering
POOL_TIMEOUT_S = 180                     # pool of pre-heated kernels full
PAGE_TIMEOUT_S = 180                     # one page (a student arriving with 30 others)
MSG_TIMEOUT_S = 60                       # any single kernel reply
RUN_TIMEOUT_S = 900                      # a whole round of N students
CLASS_SIZE = 30                          # the class the server is set up for, whatever N arrive
CLK_TCK = os.sysconf("SC_CLK_TCK")


def class_args(students: int) -> list[str]:
    """What ``./dev voila --students N`` adds to voila's arguments: a pool of N pre-heated kernels
    (without it, classroom/voila.json's pool of 1, for one learner)."""
    return [f"--pool_size={students}"]


# --- the server, as ./dev voila starts it -------------------------------------------------------
def dev_voila_args(dev: Path = ROOT / "dev") -> list[str]:
    """The arguments the ``voila)`` case of ./dev passes to voila, without those that come from the
    user's ("${pool[@]}" from --students, "${rest[@]}": the shell's "$..." words)."""
    text = dev.read_text()
    # from the case's label to the next label of ./dev's case (a case inside it is indented more)
    m = re.search(r"^ {0,2}voila\)\s*$(.*?)^ {0,2}(?:[\w-]+|\*)\)\s*$", text, re.M | re.S)
    if not m:
        raise RuntimeError(f"{dev}: no 'voila)' case")
    for line in m.group(1).splitlines():
        if "bin/voila" in line:
            tokens = shlex.split(line.strip())
            i = next(i for i, t in enumerate(tokens) if t.endswith("bin/voila"))
            return [t for t in tokens[i + 1:] if not t.startswith("$") and t != ";;"]
    raise RuntimeError(f"{dev}: the 'voila)' case does not run voila")


class ClassroomServer(Server):
    """``./dev voila`` on 127.0.0.1, a free port, a token and temporary Jupyter directories, in its
    own process group (browser_util.Server); ``stop()`` shuts it down (it shuts its kernels down)
    and then ends any of its kernels still alive, by pid."""

    name = "voila"
    any_answer = True           # its only pages run notebooks: any answer means it is up

    def __init__(self, tmp: Path, extra_args: list[str] = ()):
        super().__init__(Path(tmp))
        self.extra_args = list(extra_args)
        self._kernel_pids: set[int] = set()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "voila", *dev_voila_args(), *self.extra_args,
                "--no-browser", "--Voila.ip=127.0.0.1", f"--port={self.port}",
                "--Voila.port_retries=0", f"--token={self.token}"]

    def ready_url(self) -> str:
        return f"{self.base}/voila/no-such-page-{self.token[:8]}"

    def start(self) -> "ClassroomServer":
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


def graph_at(view: StepperView, step: int | None = None):
    """The graph's scene message (for ``step``, or any)."""
    graph = view.part("bpv-graph-view")
    return lambda m: (m["header"]["msg_type"] == "comm_msg"
                      and m["content"].get("comm_id") == graph
                      and m["content"]["data"].get("method") == "custom"
                      and (step is None or m["content"]["data"]["content"].get("k") == step))


# --- a student ------------------------------------------------------------------------------------
class Student:
    """One student: open the page, connect, wait for the widgets, click through one pass."""

    def __init__(self, server: ClassroomServer, expected: tuple[int, int], think: float = 0.0,
                 view: str = "modules", circuit_steps: int = 40):
        self.server, self.expected, self.think = server, expected, think
        self.granularity, self.circuit_steps = view, circuit_steps
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
        k, v = self.kernel, self.view
        before = v.step()
        want = graph_at(v, before + 1)
        fut = k.expect(want)
        t0 = time.perf_counter()
        b0 = k.bytes_in
        if cls == "bpv-next":
            msg_id = v.tell("bpv-bar-view", {"move": before + 1, "how": "button"})
        else:
            msg_id = v.tell(cls, {"event": "click"})
        idle = k.idle(msg_id)
        t1, _ = await k.wait(fut, f"graph update to step {before + 1} after .{cls}")
        self.latencies.append((t1 - t0) * 1000)
        self.clicked_at.append(time.monotonic() - self.t_arrival)   # from this student's arrival
        t2, _ = await k.wait(idle, f"idle kernel after .{cls}")
        self.to_idle.append((t2 - t0) * 1000)
        self.bytes.append(k.bytes_in - b0)
        return v.step()

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
                cls = "bpv-reveal" if reveal and v.shown(reveal) else "bpv-next"
                self.steps.append(await self.click(cls))
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
                 expected: tuple[int, int], view: str = "modules",
                 circuit_steps: int = 40) -> list[Student]:
    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure(None, max_clients=max(10, n))
    students = [Student(server, expected, think, view, circuit_steps) for _ in range(n)]
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
        await s.one_pass()
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
              view: str = "modules", circuit_steps: int = 40) -> dict:
    if not 1 <= n <= MAX_STUDENTS:
        raise SystemExit(f"--students: 1 to {MAX_STUDENTS}")
    expected = expected_outputs()
    tmp = Path(tempfile.mkdtemp(prefix="bpv-bench-classroom-"))
    server = ClassroomServer(tmp, [*class_args(CLASS_SIZE), *extra_args])   # --students 30
    try:
        server.start()
        t_pool = server.wait_pool()
        # the teacher started the server before the class: the pool's kernels have run the notebook
        t_warm = server.wait_quiet() if t_pool is not None else None
        idle_kernels = server.kernels()
        pool_rss = [memory_mb(p)[0] for p in idle_kernels.values()]
        cpu_server0 = cpu_seconds(server.proc.pid, with_children=False)
        students = asyncio.run(asyncio.wait_for(
            _round(server, n, think, spread, expected, view, circuit_steps), RUN_TIMEOUT_S))
        cpu_server = cpu_seconds(server.proc.pid, with_children=False) - cpu_server0
        after = server.kernels()
        log = server.log()
    finally:
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
        "kernel_cpu_pass_s": _stats([s.cpu_pass for s in ok]),
        "kernel_rss_open_mb": _stats([s.mem_open[0] for s in ok]),
        "kernel_rss_pass_mb": _stats([s.mem_pass[0] for s in ok]),
        "kernel_pss_pass_mb": _stats([s.mem_pass[1] for s in ok]),
        "server_cpu_s": cpu_server,
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
            f"| {r['view']} | {r['students']} | {_f(rd['p50'])} / {_f(rd['p90'])} / {_f(rd['max'])} "
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
    return (f"{r['students']} students: pool of {r['pool_kernels']} kernels started "
            f"{_f(r['pool_started_s'], '{:.1f}')} s and quiet {_f(r['pool_warm_s'], '{:.1f}')} s "
            f"after the server started ({_f(r['pool_kernel_rss_mb'], '{:.0f}')} MB RSS each); "
            f"{r['preheated_pages']} pages from pre-heated kernels; page p50 "
            f"{_f(r['page_s']['median'] and r['page_s']['median'] * 1000, '{:.0f}')} ms; "
            f"{_f(r['clicks_per_pass'], '{:.0f}')} clicks per pass; "
            f"{r['kernels_at_end']} kernels running at the end; "
            f"IOPub timeouts {r['iopub_timeouts_in_log']}, 'Address already in use' "
            f"{r['address_in_use_in_log']}" +
            (f"; failed: {sorted(set(r['failed_pages'] + r['failed_passes']))[:4]}"
             if r["failed_pages"] or r["failed_passes"] else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, nargs="+", default=[1, 10, 30])
    ap.add_argument("--think", type=float, default=0.0,
                    help="seconds a student waits after each graph update "
                         "(default 0: click at once)")
    ap.add_argument("--spread", type=float, default=0.0,
                    help="students arrive evenly over this many seconds (default 0: together)")
    ap.add_argument("--view", choices=["modules", "circuit", "both"], default="modules",
                    help="the module view's whole pass, or the scalar circuit (switch, then "
                         "--circuit-steps steps), or both rounds")
    ap.add_argument("--circuit-steps", type=int, default=40)
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    ap.add_argument("voila_args", nargs="*",
                    help="after --: extra voila arguments, as ./dev voila passes them on")
    a = ap.parse_args(argv)
    if any(not 1 <= n <= MAX_STUDENTS for n in a.students):
        ap.error(f"--students: 1 to {MAX_STUDENTS}")
    rows = []
    views = ["modules", "circuit"] if a.view == "both" else [a.view]
    for view, n in [(v, n) for v in views for n in a.students]:
        print(f"[bench_classroom] {n} student(s), {view} ...", file=sys.stderr, flush=True)
        rows.append(run_round(n, a.think, a.spread, a.voila_args, view,
                              max(1, min(a.circuit_steps, 2000))))
        print("[bench_classroom]   " + notes(rows[-1]), file=sys.stderr, flush=True)
    print(f"\nClassroom app (notebooks/{NOTEBOOK}) served as `./dev voila --students "
          f"{CLASS_SIZE}` serves it (voila "
          f"{' '.join(dev_voila_args() + class_args(CLASS_SIZE) + a.voila_args)}); "
          f"{os.cpu_count()} cores, Python "
          f"{platform.python_version()}; once the pool is warm the students arrive "
          f"{'together' if not a.spread else f'evenly over {a.spread:g} s'}, "
          f"think time {a.think:g} s; per-student figures are medians.\n")
    print(table(rows))
    print()
    for r in rows:
        print("* " + notes(r))
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
