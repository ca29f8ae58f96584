"""The class service for JupyterHub: each student has a server of their own there, so their
kernels send events here, with their own hub token (``JUPYTERHUB_API_TOKEN``); the teachers
(members of a hub group) read the class's events and run the classes.

    c.JupyterHub.services = [{
        "name": "backpropviz-class",
        "url": "http://127.0.0.1:10101",
        "command": [sys.executable, "-m", "backpropviz.live.service",
                    "--db", "sqlite:////srv/backpropviz/class.sqlite3", "--teachers", "teachers"],
    }]
    c.JupyterHub.load_roles = [{"name": "backpropviz-class", "services": ["backpropviz-class"],
                                "scopes": ["read:groups", "read:users:name"]},
                               {"name": "user", "scopes": ["self", "access:services"]}]
    c.Spawner.environment = {"BPV_CLASS_URL": "http://127.0.0.1:8000/services/backpropviz-class"}

Requests (JSON; ``Authorization: token <hub token>``; at most 64 KB):
    POST /classes/CODE/join          a student: claim a pseudonym in the class ({"student": NAME})
    POST /events                     a student: one event, sent under a pseudonym of their own
    GET  /classes/CODE               anyone with a hub token: {"code", "open"} (a code typed)
    GET  /classes                    teachers: every class
    POST /classes                    teachers: open a new class
    GET  /classes/CODE/events        teachers: the class's events
    POST /classes/CODE/reset|close   teachers
A student's token reads nothing of anyone's answers; a missing or forged token is refused (403).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

from tornado import ioloop, web
from tornado.escape import url_escape
from tornado.httpclient import AsyncHTTPClient

from .events import EventError, normal_code
from .store import ClassStore, StoreError

MAX_BODY = 64 * 1024             # a request's JSON at most (413 past it)
MAX_READ = 1024 * 1024           # what the server reads at all (the connection closes past it)
GROUP_CACHE = 30.0               # seconds a teacher group's members are trusted


class Refused(web.HTTPError):
    """An HTTP error whose message (any language) goes in the JSON body, not the status line
    (a reason phrase may only be Latin-1)."""

    def __init__(self, status: int, message: str):
        super().__init__(status)
        self.message = message




class Base(web.RequestHandler):
    """A request named by its hub token: ``self.user`` (the hub's user model) or a 403."""

    def initialize(self, app):
        self.app = app

    def check_xsrf_cookie(self):       # an API for tokens, never a cookie: nothing to forge
        pass

    def write_error(self, status, **kwargs):
        # the message travels in the body: a reason phrase may only be Latin-1 (tornado)
        error = kwargs.get("exc_info", (None, None, None))[1]
        self.finish({"message": getattr(error, "message", None) or self._reason})

    async def prepare(self):
        if len(self.request.body or b"") > MAX_BODY:
            raise Refused(413, f"a request is at most {MAX_BODY // 1024} KB")
        header = self.request.headers.get("Authorization", "")
        token = header.split(None, 1)[1] if header.lower().startswith(("token ", "bearer ")) \
            else ""
        user = None
        if token:
            try:
                user = await self.app.auth.user_for_token(token, sync=False)
            except Exception:      # noqa: BLE001 — the hub refused or is unreachable
                user = None
        if not user or user.get("kind", "user") != "user":
            raise Refused(403, "a hub user's token is needed")
        self.user = user

    def owner(self) -> str:
        """Who sent this, as the store knows them: a hash of the hub name (pseudonyms stay so)."""
        return hashlib.sha256(("backpropviz:" + self.user["name"]).encode()).hexdigest()[:24]

    async def teacher(self):
        if not await self.app.is_teacher(self.user["name"]):
            raise Refused(403, "only the class's teachers read or run classes")

    def body(self) -> dict:
        try:
            return json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):
            raise Refused(400, "the request is not JSON") from None

    def run(self, fn, *args):
        try:
            return fn(*args)
        except EventError as e:
            raise Refused(400, str(e)) from None
        except StoreError as e:
            raise Refused(503, str(e)) from None


class Events(Base):
    def post(self):
        new = self.run(self.app.store.add, self.body(), self.owner())
        self.set_status(201 if new else 200)
        self.finish({"stored": True, "new": new})


class Classes(Base):
    async def get(self):
        await self.teacher()
        self.finish({"classes": self.run(self.app.store.classes)})

    async def post(self):
        await self.teacher()
        self.set_status(201)
        self.finish({"code": self.run(self.app.store.open_class)})


class Join(Base):
    """A student claims a pseudonym in a class, before their first answer (its first user keeps
    it: a name taken is said when they join)."""

    def post(self, code):
        code = self.run(normal_code, code)
        student = self.body().get("student")
        self.run(self.app.store.claim, code, student, self.owner())
        self.finish({"code": code, "student": student})


class OneClass(Base):
    def get(self, code):
        code = self.run(normal_code, code)
        self.finish({"code": code, "open": self.run(self.app.store.is_open, code)})


class ClassEvents(Base):
    async def get(self, code):
        await self.teacher()
        code = self.run(normal_code, code)
        self.finish({"code": code, "open": self.run(self.app.store.is_open, code),
                     "count": self.run(self.app.store.count, code),
                     "events": self.run(self.app.store.events, code)})


class ClassCount(Base):
    async def get(self, code):
        await self.teacher()
        code = self.run(normal_code, code)
        self.finish({"code": code, "open": self.run(self.app.store.is_open, code),
                     "count": self.run(self.app.store.count, code)})


class ClassAction(Base):
    async def post(self, code, action):
        await self.teacher()
        code = self.run(normal_code, code)
        if action == "reset":
            self.finish({"dropped": self.run(self.app.store.reset, code)})
        else:
            self.run(self.app.store.close_class, code)
            self.finish({"closed": code})


class App:
    """The service: its store, the hub's authentication, the teachers' group."""

    def __init__(self, store: ClassStore, teachers: str, auth=None):
        from jupyterhub.services.auth import HubAuth
        self.store, self.teachers = store, teachers
        self.auth = auth or HubAuth(cache_max_age=30)
        self._members: tuple[float, set] = (0.0, set())

    async def is_teacher(self, name: str) -> bool:
        at, members = self._members
        if time.monotonic() - at > GROUP_CACHE:
            try:
                r = await AsyncHTTPClient().fetch(
                    f"{self.auth.api_url}/groups/{url_escape(self.teachers)}",
                    headers={"Authorization": f"token {self.auth.api_token}"},
                    request_timeout=5)
                members = set(json.loads(r.body).get("users", []))
            except Exception:      # noqa: BLE001 — the hub unreachable: nobody is a teacher
                members = set()
            self._members = (time.monotonic(), members)
        return name in members

    def web_app(self, prefix: str = "/") -> web.Application:
        p = prefix.rstrip("/")
        code = r"([A-Za-z0-9 ]{1,12})"
        kw = {"app": self}
        return web.Application([
            (rf"{p}/events", Events, kw),
            (rf"{p}/classes", Classes, kw),
            (rf"{p}/classes/{code}", OneClass, kw),
            (rf"{p}/classes/{code}/events", ClassEvents, kw),
            (rf"{p}/classes/{code}/count", ClassCount, kw),
            (rf"{p}/classes/{code}/join", Join, kw),
            (rf"{p}/classes/{code}/(reset|close)", ClassAction, kw),
        ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m backpropviz.live.service",
                                     description="backpropviz's class service for JupyterHub")
    parser.add_argument("--db", required=True, help="sqlite:////path/class.sqlite3 or "
                                                    "postgresql://user:password@host/db")
    parser.add_argument("--teachers", default="teachers",
                        help="the hub group whose members read and run classes")
    parser.add_argument("--keep-days", type=float, default=30.0,
                        help="answers older than this are forgotten (checked hourly; default 30)")
    args = parser.parse_args(argv)
    from urllib.parse import urlparse
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app = App(ClassStore.from_url(args.db), args.teachers)
    server = app.web_app(os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")).listen(
        url.port or 80, url.hostname or "127.0.0.1", max_body_size=MAX_READ)
    print(f"backpropviz class service on {url.geturl()}, store {app.store.where}", flush=True)

    def forget():
        try:
            app.store.forget_before(args.keep_days * 86400)
        except StoreError as e:
            print(f"backpropviz class service: {e}", flush=True)
    forget()
    ioloop.PeriodicCallback(forget, 3600 * 1000).start()
    try:
        ioloop.IOLoop.current().start()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
