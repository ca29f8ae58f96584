"""The class service against a real JupyterHub on 127.0.0.1 (DummyAuthenticator, its proxy from
Debian's node-configurable-http-proxy): two students and a teacher, each with their own hub token.
A student writes only their own events and reads none; a forged or missing token is refused; the
teacher reads the class and runs it; the teacher's view reads through the service."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.live.events import new_id
from backpropviz.live.link import ClassLink, Hub, Remote
from backpropviz.live.summary import summarize

pytest.importorskip("jupyterhub")
pytestmark = pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                                reason="JupyterHub's proxy is not installed (./dev test "
                                       "installs node-configurable-http-proxy)")
# Debian's proxy's modules, for a Node.js that is not Debian's own (which finds them by itself)
NODE_PATH = ":".join(p for p in ("/usr/share/nodejs", os.environ.get("NODE_PATH", "")) if p)
ADMIN = "bpv-test-admin-" + "0" * 24
SERVICE = "backpropviz-class"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url, token=None, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else
                                 json.dumps(body).encode(), headers={"Content-Type":
                                                                     "application/json"})
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"{}")
        except ValueError:
            return e.code, {"text": body[:200].decode("utf-8", "replace")}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    port, hub_port, proxy_api, svc = _port(), _port(), _port(), _port()
    (tmp / "jupyterhub_config.py").write_text(f"""
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.JupyterHub.db_url = "sqlite:///{tmp}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/cookie_secret"
c.JupyterHub.pid_file = "{tmp}/hub.pid"
c.ConfigurableHTTPProxy.pid_file = "{tmp}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.Authenticator.allowed_users = {{"ada", "bob", "tess"}}
c.JupyterHub.load_groups = {{"teachers": {{"users": ["tess"]}}}}
c.JupyterHub.services = [
    {{"name": "{SERVICE}", "url": "http://127.0.0.1:{svc}",
      "command": [{sys.executable!r}, "-m", "backpropviz.live.service",
                  "--db", "sqlite:///{tmp}/class/class.sqlite3", "--teachers", "teachers"]}},
    {{"name": "test-admin", "api_token": "{ADMIN}"}},
]
c.JupyterHub.load_roles = [
    {{"name": "class-service", "services": ["{SERVICE}"], "scopes": ["read:groups"]}},
    {{"name": "test-admin", "services": ["test-admin"], "scopes": ["admin:users", "tokens"]}},
]
""")
    log = open(tmp / "hub.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f",
                             str(tmp / "jupyterhub_config.py")], cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "NODE_PATH": NODE_PATH})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                code, _ = _call(f"{base}/services/{SERVICE}/classes/ABCDEF", "x")
                if code == 403:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        log.seek(0)
        assert proc.poll() is None and code == 403, f"the hub did not start:\n{log.read()[-3000:]}"
        tokens = {}
        for name in ("ada", "bob", "tess"):
            c, _ = _call(f"{base}/hub/api/users/{name}", ADMIN, "POST")
            assert c in (201, 409)
            c, t = _call(f"{base}/hub/api/users/{name}/tokens", ADMIN, "POST", {"note": "test"})
            assert c == 201, t
            tokens[name] = t["token"]
        yield {"base": base, "url": f"{base}/services/{SERVICE}", "tokens": tokens}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        _stop_pid_file(tmp / "proxy.pid")       # the hub leaves its proxy running on a signal


def _stop_pid_file(path):
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def _event(code, student):
    return {"id": new_id(), "code": code, "student": student, "fingerprint": "0" * 16,
            "view": "modules", "step": 7, "writes": "∂J/∂W[2]", "kind": "B2", "tag": "(7.65)",
            "outcome": "wrong", "slip": "transpose", "answer": [1.0], "time": time.time()}


def test_students_write_their_own_events_and_read_none_teachers_read_the_class(hub):
    url, t = hub["url"], hub["tokens"]
    assert _call(f"{url}/classes", t["ada"], "POST")[0] == 403        # a student opens nothing
    code_status, opened = _call(f"{url}/classes", t["tess"], "POST")
    assert code_status == 201
    code = opened["code"]
    assert _call(f"{url}/classes/{code.lower()}", t["ada"]) == (200, {"code": code, "open": True})
    e = _event(code, "ada-pseudo")
    assert _call(f"{url}/events", t["ada"], "POST", e)[0] == 201
    assert _call(f"{url}/events", t["ada"], "POST", e) == (200, {"stored": True, "new": False})
    # a name is claimed when a student joins; the message reaches them in any language
    assert _call(f"{url}/classes/{code}/join", t["ada"], "POST", {"student": "Łukasz"})[0] == 200
    status, said = _call(f"{url}/classes/{code}/join", t["bob"], "POST", {"student": "Łukasz"})
    assert status == 400 and "'Łukasz' is another student's" in said["message"], said
    # bob cannot write under ada's pseudonym, nor read anything
    status, said = _call(f"{url}/events", t["bob"], "POST", _event(code, "ada-pseudo"))
    assert status == 400 and "another student's" in said["message"]
    assert _call(f"{url}/events", t["bob"], "POST", _event(code, "bob-pseudo"))[0] == 201
    for path in (f"/classes/{code}/events", f"/classes/{code}/count", "/classes"):
        assert _call(url + path, t["bob"])[0] == 403
    assert _call(f"{url}/classes/{code}/reset", t["bob"], "POST")[0] == 403
    # a forged or a missing token is refused; a malformed or oversized event too
    for token in ("forged-" + "a" * 30, None):
        assert _call(f"{url}/events", token, "POST", _event(code, "ada-pseudo"))[0] == 403
        assert _call(f"{url}/classes/{code}/events", token)[0] == 403
    assert _call(f"{url}/events", t["ada"], "POST", {**_event(code, "ada-pseudo"), "step": -1}
                 )[0] == 400
    assert _call(f"{url}/events", t["ada"], "POST", {**_event(code, "ada-pseudo"),
                                                      "slip": "x" * 70_000})[0] == 413
    # the teacher reads the class: 2 events, pseudonyms only (no hub name)
    status, body = _call(f"{url}/classes/{code}/events", t["tess"])
    assert status == 200 and body["count"] == 2
    assert {e["student"] for e in body["events"]} == {"ada-pseudo", "bob-pseudo"}
    assert "ada" not in json.dumps([{k: v for k, v in e.items() if k != "student"}
                                    for e in body["events"]])


def test_a_students_stepper_sends_through_the_service_and_the_teacher_view_reads_it(hub):
    url, t = hub["url"], hub["tokens"]
    code = _call(f"{url}/classes", t["tess"], "POST")[1]["code"]
    net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)
    s = bpv.Stepper(net, np.array([1.0, -2.0]), 1.0, predict=True)
    join = s.predict_box.join
    join.destination = Hub(url, t["ada"])
    join.code.value, join.name.value = code, "ada-2"
    join.join()
    m = s.model
    k = next(k for k in range(1, m.n + 1) if m.needs_prediction(k))
    m.check_prediction("[1, 2, 3]", k)
    m.reveal(k)
    assert join.link.flush(10) and join.link.stored == 2, join.status.value
    view = bpv.TeacherView(Remote(Hub(url, t["tess"])), code, refresh=0)
    assert view.summary.students == 1 and view.summary.step(k).revealed == 1
    assert summarize(Remote(Hub(url, t["tess"])).events(code)).events == 2
    # a student's token cannot open the teacher's view
    student_view = bpv.TeacherView(Remote(Hub(url, t["bob"])), code, refresh=0)
    assert student_view.summary is None and "teachers" in student_view.message.value + \
        student_view.now.value
