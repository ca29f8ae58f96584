"""A student's link to a class: each attempt of their Stepper becomes an event, queued and sent by
a thread of its own, so that a slow, full or absent store never blocks the lesson.

Where events go is the server's business, read from the kernel's environment:
``BPV_CLASS_DIR`` (one server: the class's folder, written directly) or ``BPV_CLASS_URL`` (the
JupyterHub service, with the student's own ``JUPYTERHUB_API_TOKEN``). Without either, there is no
class to join and the Stepper works as it always did.
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import threading
import time

from .events import EventError, new_id, normal_code, normal_student
from .store import ClassStore, StoreError

MAX_READ = 256 * 2**20  # a teacher's read of a class's events, at most
QUEUE = 1000            # events waiting at most (then the newest are refused, with a notice)
RETRY = (0.5, 1, 2, 5, 10)   # seconds between tries when the store does not answer
DEFER = 0.15                 # seconds an answer waits before it is sent (the reply goes first)
TIMEOUT = 5.0


class Folder:
    """One server: the class's SQLite database in a folder on this machine. Its students have no
    accounts, so each link is an owner of its own (a random token): two students who choose the
    same name are told so at once, not merged."""

    def __init__(self, folder):
        self.folder = folder
        self._store = None
        self.owner = secrets.token_hex(12)

    def _open(self) -> ClassStore:
        if self._store is None:
            self._store = ClassStore(self.folder)
        return self._store

    def join(self, code: str, student: str) -> None:
        if not self._open().is_open(code):
            raise EventError(f"there is no open class {code}: check the code with your teacher")
        self._open().claim(code, student, self.owner)

    def post(self, event: dict) -> None:
        self._open().add(event, self.owner)


class Hub:
    """JupyterHub: the class service, reached with the student's own hub token."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url.rstrip("/"), token

    def _call(self, method: str, path: str, body: dict | None = None,
              limit: int = 65536) -> dict:
        """One request to the service, its reply read up to ``limit`` bytes; EventError if it
        refuses (4xx), StoreError if it fails or says too much."""
        import http.client             # here: a Stepper without a hub class never loads them
        import urllib.error
        import urllib.request
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                raw = r.read(limit + 1)
                if len(raw) > limit:
                    raise StoreError(f"the class service said more than {limit // 2**20 or 1} MB")
                reply = json.loads(raw or b"{}")
                if not isinstance(reply, dict):
                    raise StoreError("the class service said something else than an object")
                return reply
        except urllib.error.HTTPError as e:
            try:
                said = json.loads(e.read(4096))
                said = said.get("message", "") if isinstance(said, dict) else ""
            except ValueError:
                said = ""
            if 400 <= e.code < 500:
                raise EventError(str(said)[:200] or f"the class service refused it ({e.code})") \
                    from None
            raise StoreError(f"the class service failed ({e.code})") from None
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise StoreError(f"the class service does not answer ({type(e).__name__})") from None

    def join(self, code: str, student: str) -> None:
        self._call("POST", f"/classes/{code}/join", {"student": student})

    def post(self, event: dict) -> None:
        self._call("POST", "/events", event)


class Remote:
    """The hub service as a teacher's view reads it: the methods of ClassStore it uses."""

    def __init__(self, hub: Hub):
        self.hub, self.where = hub, hub.url

    def _get(self, method: str, path: str, limit: int = 65536) -> dict:
        try:
            return self.hub._call(method, path, limit=limit)
        except EventError as e:
            raise StoreError(str(e)) from None

    def classes(self) -> list[dict]:
        return self._get("GET", "/classes")["classes"]

    def open_class(self) -> str:
        return self._get("POST", "/classes")["code"]

    def is_open(self, code: str) -> bool:
        return bool(self._get("GET", f"/classes/{normal_code(code)}")["open"])

    def count(self, code: str) -> int:
        return int(self._get("GET", f"/classes/{normal_code(code)}/count")["count"])

    def events(self, code: str) -> list[dict]:
        # a class's events: ~450 bytes each, at most store.MAX_ROWS of them
        return self._get("GET", f"/classes/{normal_code(code)}/events", MAX_READ)["events"]

    def reset(self, code: str) -> int:
        return int(self._get("POST", f"/classes/{normal_code(code)}/reset")["dropped"])

    def close_class(self, code: str) -> None:
        self._get("POST", f"/classes/{normal_code(code)}/close")

    def close(self) -> None:
        """Nothing held open (each read is its own request)."""


def source(folder=None):
    """What a teacher's view reads: the store in ``folder``, else the server's (BPV_CLASS_DIR, or
    the hub service of BPV_CLASS_URL); None when the server keeps no class."""
    if folder:
        return ClassStore(folder)
    where = from_environment()
    if isinstance(where, Folder):
        return ClassStore(where.folder)
    if isinstance(where, Hub):
        return Remote(where)
    return None


def from_environment():
    """The server's class destination (Folder or Hub), or None when it has none."""
    if os.environ.get("BPV_CLASS_DIR"):
        return Folder(os.environ["BPV_CLASS_DIR"])
    if os.environ.get("BPV_CLASS_URL") and os.environ.get("JUPYTERHUB_API_TOKEN"):
        return Hub(os.environ["BPV_CLASS_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    return None


class ClassLink:
    """One student in one class: ``send(attempt, fingerprint)`` queues an event; a thread sends
    it, retrying while the store does not answer. ``status()`` says how it goes, in words."""

    def __init__(self, destination, code: str, student: str | None = None, on_status=None):
        self.destination, self.code = destination, normal_code(code)
        self.student = normal_student(student) if student and student.strip() \
            else f"student-{secrets.token_hex(3)}"
        destination.join(self.code, self.student)    # a wrong code, a taken name: said at once
        self.sent = self.done = self.stored = 0
        self.notice = ""
        self._on_status = on_status
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._thread = threading.Thread(target=self._run, name="bpv-class-link", daemon=True)
        self._thread.start()

    def send(self, attempt: dict, fingerprint: str) -> None:
        event = {"id": new_id(), "code": self.code, "student": self.student,
                 "fingerprint": fingerprint, "time": time.time(),
                 **{k: attempt[k] for k in ("view", "step", "writes", "kind", "tag", "outcome",
                                            "slip", "answer")}}
        if event["answer"] is not None:
            event["answer"] = event["answer"][:64]
        try:
            self._queue.put_nowait(event)
            self.sent += 1
        except queue.Full:
            self._say("too many answers are waiting for the class; new ones are not sent")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is answered (stored or refused) (tests, a kernel closing)."""
        end = time.monotonic() + timeout
        while self.done < self.sent and time.monotonic() < end:
            time.sleep(0.02)
        return self.done >= self.sent

    def status(self) -> str:
        said = f"class {self.code} as {self.student}: {self.stored} of {self.sent} " \
               f"answer{'s' * (self.sent != 1)} received"
        return said + (f" · {self.notice}" if self.notice else "")

    def _say(self, notice: str) -> None:
        self.notice = notice
        if self._on_status is not None:
            try:
                self._on_status(self.status())
            except Exception:       # noqa: BLE001 — a closed page must not stop the sending
                pass

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # the answer's own reply (the graph, the feedback) leaves the kernel first: the class
            # gets it a moment later, with whatever else was answered meanwhile
            time.sleep(DEFER)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            notice = ""
            for event in batch:
                try:
                    notice = self._post(event) or notice
                except Exception as e:   # noqa: BLE001 — the thread must outlive any one answer
                    notice = f"an answer was not kept ({type(e).__name__})"
            self._say(notice)              # one status update for the batch, then it counts done
            self.done += len(batch)

    def _post(self, event: dict) -> str:
        """Send one event, retrying while the store does not answer; '' or what went wrong."""
        for wait in (*RETRY, None):
            try:
                self.destination.post(event)
                self.stored += 1
                return ""
            except EventError as e:            # refused for good: said, not retried
                return f"not sent: {e}"
            except StoreError as e:
                if wait is None:
                    return f"an answer was not kept: {e}"
                self._say(f"the class store does not answer yet; retrying ({e})")
                time.sleep(wait)
        return ""


__all__ = ["ClassLink", "Folder", "Hub", "Remote", "from_environment", "source"]
