"""A class's predictions, live (backpropviz/live): events, their store, the summary the teacher
sees, and a student's link from the Stepper. The one-server path end to end is
benchmarks/bench_classroom.py --class (figures in the README); the browser test of the teacher's
view is in test_browser_teacher.py."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.live import store as S
from backpropviz.live.events import EventError, new_id, normal_code, validate
from backpropviz.live.link import ClassLink, Folder
from backpropviz.live.summary import histogram, summarize
from backpropviz.teach.stepper import StepperModel


def event(code, **kw):
    e = {"id": new_id(), "code": code, "student": "ada", "fingerprint": "0" * 16,
         "view": "modules", "step": 7, "writes": "∂J/∂W[2]", "kind": "B2", "tag": "(7.65)",
         "outcome": "wrong", "slip": "transpose", "answer": [0.5, -1.0], "time": time.time()}
    e.update(kw)
    return e


@pytest.fixture
def store(tmp_path):
    s = S.ClassStore(tmp_path / "class", create=True)
    yield s
    s.close()


# --- events: everything checked on the way in ----------------------------------------------------
@pytest.mark.parametrize("change, said", [
    ({"id": "x"}, "id"), ({"code": "0OIL11"}, "class code"), ({"student": "<script>"}, "name"),
    ({"student": "x" * 33}, "name"), ({"fingerprint": "zz"}, "fingerprint"),
    ({"step": 0}, "step"), ({"step": True}, "step"), ({"step": 2.0}, "step"),
    ({"view": "3d"}, "view"), ({"outcome": "great"}, "outcome"),
    ({"answer": [float("nan")]}, "answer"), ({"answer": [1.0] * 65}, "answer"),
    ({"answer": "[1]"}, "answer"), ({"time": -1}, "time"), ({"writes": ""}, "writes"),
    ({"tag": "x" * 25}, "tag"), ({"extra": 1}, "no field"), ({"slip": "s" * 5000}, "4096"),
])
def test_a_bad_event_is_refused_with_one_sentence(store, change, said):
    code = store.open_class()
    with pytest.raises(EventError, match=said):
        store.add({**event(code), **change})
    assert store.count() == 0


def test_a_code_is_read_as_typed_and_validated_events_keep_only_known_fields(store):
    code = store.open_class()
    assert normal_code(" " + code.lower()[:3] + " " + code.lower()[3:]) == code
    e = validate(event(code))
    assert set(e) == {"id", "code", "student", "fingerprint", "view", "step", "writes", "kind",
                      "tag", "outcome", "slip", "answer", "time"}


# --- the store -----------------------------------------------------------------------------------
def test_an_event_is_stored_once_and_a_closed_class_takes_no_more(store):
    code = store.open_class()
    e = event(code)
    assert store.add(e) is True and store.add(e) is False
    assert store.count(code) == 1 and store.events(code)[0]["answer"] == [0.5, -1.0]
    assert store.db.run("PRAGMA journal_mode")[1][0][0] == "wal"
    store.close_class(code)
    with pytest.raises(EventError, match="no open class"):
        store.add(event(code))
    with pytest.raises(EventError, match="no open class"):
        store.add(event("ABCDEF"))
    assert store.reset(code) == 1 and store.count(code) == 0


def test_a_pseudonym_belongs_to_the_first_sender_who_used_it(store):
    code = store.open_class()
    assert store.add(event(code, student="ada"), owner="hub-user-1")
    assert store.add(event(code, student="ada"), owner="hub-user-1")
    with pytest.raises(EventError, match="another student's"):
        store.add(event(code, student="ada"), owner="hub-user-2")
    assert store.add(event(code, student="bob"), owner="hub-user-2")
    assert store.count(code) == 3


def test_a_full_store_says_so_and_keeps_what_it_had(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_BYTES", 96 * 1024)
    s = S.ClassStore(tmp_path / "small", create=True)
    code = s.open_class()
    kept = 0
    with pytest.raises(S.StoreError, match="full"):
        for _ in range(10_000):
            s.add(event(code, slip="x" * 40))
            kept += 1
    assert kept > 10 and s.count(code) == kept


def test_a_folder_without_a_store_is_named(tmp_path):
    with pytest.raises(S.StoreError, match="no class store in"):
        S.ClassStore(tmp_path / "none")


KILLED = """
import sys, time
from backpropviz.live.store import ClassStore
from backpropviz.live.events import new_id
s = ClassStore(sys.argv[1])
for i in range(100000):
    e = {"id": new_id(), "code": sys.argv[2], "student": "ada", "fingerprint": "0" * 16,
         "view": "modules", "step": 1 + i % 9, "writes": "∂J/∂u[1]", "kind": "B1", "tag": "(7.63)",
         "outcome": "wrong", "slip": None, "answer": [1.0], "time": time.time()}
    s.add(e)
    print(e["id"], flush=True)          # acknowledged: stored and committed
"""


def test_a_killed_writer_loses_nothing_it_acknowledged(store):
    code = store.open_class()
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store.folder), code],
                            stdout=subprocess.PIPE, text=True)
    acked = []
    while len(acked) < 200:
        acked.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    stored = {e["id"] for e in S.ClassStore(store.folder).events(code)}
    assert set(acked) <= stored


# --- the summary ---------------------------------------------------------------------------------
def test_the_summary_counts_students_outcomes_slips_and_the_step_the_class_is_on():
    c = "ABCDEF"
    evs = [event(c, student="a", step=7, outcome="right first time", slip=None, answer=[2.0]),
           event(c, student="b", step=7, outcome="wrong", slip="transpose", answer=[3.0]),
           event(c, student="b", step=7, outcome="right after a hint", slip=None, answer=[2.0]),
           event(c, student="c", step=7, outcome="wrong", slip="forgot σ′", answer=[9.0]),
           event(c, student="c", step=7, outcome="wrong", slip="forgot σ′", answer=[9.0]),
           event(c, student="d", step=7, outcome="revealed", slip=None, answer=None),
           event(c, student="a", step=8, outcome="wrong", slip="sign", answer=[-1.0]),
           event(c, student="b", step=8, outcome="right first time", slip=None, answer=[1.0]),
           event(c, student="e", step=3, outcome="wrong", fingerprint="1" * 16)]
    s = summarize(evs)
    assert (s.students, s.events, s.left_out, s.current) == (4, 9, 1, 8)
    st = s.step(7)
    assert (st.answered, st.right_first, st.right_after_hint, st.revealed, st.stuck) == \
        (4, 1, 1, 1, 1)
    assert st.share_right_first == 0.25
    assert st.slips == [("forgot σ′", 2), ("transpose", 1)]
    assert st.histogram == [("2", 2, True), ("3", 1, False), ("9", 2, False)]
    assert s.step(8).slips == [("sign", 1)]


def test_a_histogram_of_many_values_has_bins_and_marks_the_right_one():
    bars = histogram(list(np.linspace(0, 1, 50)), right=0.5, bins=8)
    assert len(bars) == 8 and sum(n for _, n, _ in bars) == 50
    assert [right for *_, right in bars].count(True) == 1


# --- a student's Stepper, joined to a class --------------------------------------------------------
def _model():
    net = bpv.mlp([2, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    return StepperModel(net, np.array([1.0, -2.0]), 1.0)


def _step(m, kind, node_prefix):
    return next(k for k in range(1, m.n + 1) if m.trace.specs[k - 1].kind == kind
                and m.trace.specs[k - 1].node.startswith(node_prefix))


def test_each_slip_the_hints_recognise_reaches_the_class_by_name(store):
    code = store.open_class()
    m = _model()
    link = ClassLink(Folder(store.folder), code, "ada")
    m.on_attempt(lambda a: link.send(a, "0" * 16))
    kW = _step(m, "B2", "W[2]")
    want = np.asarray(m.trace[m.trace.specs[kW - 1].writes])
    m.check_prediction(json.dumps(want.T.tolist()), kW)        # transposed: a missing ᵀ
    m.check_prediction(json.dumps((-want).tolist()), kW)        # every sign flipped
    m.check_prediction("[1, 2, 3, 4]", kW)                      # a wrong shape
    m.check_prediction(json.dumps(want.tolist()), kW)           # right, after hints
    kz = _step(m, "B1", "u[1]")                                 # σ's (B1): σ′ forgotten = v
    spec = m.trace.specs[kz - 1]
    v = np.asarray(m.trace[dict(spec.subs)["v"]])
    m.check_prediction(json.dumps(v.tolist()), kz)
    m.reveal(kz)
    assert link.flush()
    s = summarize(store.events(code))
    slips = dict(s.step(kW).slips)
    assert slips == {"transpose": 1, "sign": 1, "wrong shape": 1}, slips
    assert dict(s.step(kz).slips) == {"forgot σ′": 1}
    assert s.step(kW).right_after_hint == 1 and s.step(kz).revealed == 1
    assert link.stored == link.sent == 6


class Broken:
    def join(self, code, student):
        pass

    def post(self, event):
        raise S.StoreError("the class store is full (test)")


def test_a_full_store_is_a_quiet_notice_and_the_lesson_goes_on(monkeypatch):
    from backpropviz.live import link as L
    monkeypatch.setattr(L, "RETRY", (0.01,))
    net = bpv.mlp([2, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    s = bpv.Stepper(net, np.array([1.0, -2.0]), 1.0, predict=True)
    join = s.predict_box.join
    join.destination = Broken()
    join.code.value, join.name.value = "abcdef", "ada"
    join.join()
    m = s.model
    k = next(k for k in range(1, m.n + 1) if m.needs_prediction(k))
    assert m.check_prediction("[1, 2, 3]", k)[0] is False       # the lesson answers at once
    assert join.link.flush(5)
    assert "not kept" in join.status.value and "full" in join.status.value
    assert "0 of 1" in join.status.value


def test_two_students_choosing_one_name_are_told_when_the_second_joins(store):
    code = store.open_class()
    ClassLink(Folder(store.folder), code, "ada")
    with pytest.raises(EventError, match="another student's"):
        ClassLink(Folder(store.folder), code, "ada")


def test_a_missing_store_is_said_in_the_widget_not_raised(tmp_path):
    net = bpv.mlp([2, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    s = bpv.Stepper(net, np.array([1.0, -2.0]), 1.0, predict=True)
    join = s.predict_box.join
    join.destination = Folder(tmp_path / "gone")
    join.code.value = "ABCDEF"
    join.join()
    assert join.link is None and "no class store" in join.status.value


def test_a_wrong_code_is_said_in_the_widget_and_nothing_is_joined(store):
    net = bpv.mlp([2, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    s = bpv.Stepper(net, np.array([1.0, -2.0]), 1.0, predict=True)
    join = s.predict_box.join
    join.destination = Folder(store.folder)
    for code, said in (("abc", "6 letters"), ("ABCDEF", "no open class")):
        join.code.value = code
        join.join()
        assert join.link is None and said in join.status.value
    assert s.predict_box.join.layout.display == "none"       # no class on this server


def raw_insert(store, e):
    """A row as a damaged or hostile store might hold it, past validate()."""
    e = {**e, "answer": json.dumps(e["answer"]), "received": time.time()}
    store.db.run(f"INSERT INTO events ({', '.join(S.FIELDS)}) VALUES "
                 f"({', '.join('?' * len(S.FIELDS))})", tuple(e[f] for f in S.FIELDS))


def test_markup_is_refused_on_the_way_in_and_escaped_on_the_way_out(store):
    code = store.open_class()
    for field in ("writes", "tag", "slip"):
        with pytest.raises(EventError, match="what a step writes"):
            store.add(event(code, **{field: "<img src=x onerror=alert(1)>"}))
    raw_insert(store, event(code, writes="<img src=x onerror=alert(1)>", student="ada"))
    view = bpv.TeacherView(store.folder, code, refresh=0)
    text = view.now.value + "".join(getattr(c, "value", "") for row in view.table.children
                                    for c in getattr(row, "children", [row]))
    assert "<img" not in text and "&lt;img" in text
    assert "ada" in view.students.value
    view.projector.value = True
    assert view.students.layout.display == "none" and "ada" not in view.students.value


def test_the_teachers_view_without_a_class_says_how_to_start_one():
    view = bpv.TeacherView(None, refresh=0)
    assert "backpropviz teacher" in view.now.value


def test_the_same_store_through_sqlalchemy_as_the_hub_service_runs_it_on_postgresql(tmp_path):
    """A URL SQLAlchemy reads (sqlite+pysqlite here; postgresql:// on Zero to JupyterHub) runs the
    same SQL, its placeholders numbered: events once, owners, counts, reset."""
    pytest.importorskip("sqlalchemy")
    s = S.ClassStore.from_url(f"sqlite+pysqlite:///{tmp_path / 'hub.sqlite3'}")
    assert s.path is None and "hub.sqlite3" in s.where
    code = s.open_class()
    e = event(code)
    assert s.add(e, owner="o1") is True and s.add(e, owner="o1") is False
    with pytest.raises(EventError, match="another student's"):
        s.add(event(code), owner="o2")
    assert s.count(code) == 1 and s.events(code)[0]["answer"] == [0.5, -1.0]
    assert s.is_open(code) and [c["code"] for c in s.classes()] == [code]
    assert s.reset(code) == 1
    s.close_class(code)
    assert not s.is_open(code)


def test_a_histogram_of_extreme_numbers_neither_overflows_nor_fails():
    bars = histogram([1e308, -1e308, float("nan")] + list(range(9)), right=1e308)
    assert sum(n for _, n, _ in bars) == 11 and "inf" not in " ".join(b for b, _, _ in bars)
    assert bars[-1][2] and histogram([0.5] * 5, 0.5) == [("0.5", 5, True)]


def test_the_class_commands(tmp_path, capsys):
    from backpropviz import cli
    folder = tmp_path / "class"
    assert cli.main(["class", "open", str(folder)]) == 0
    code = re.search(r"class (\w{6}) is open", capsys.readouterr().out).group(1)
    assert cli.main(["class", "list", str(folder)]) == 0
    assert f"{code}  open" in capsys.readouterr().out
    assert cli.main(["class", "close", str(folder), code.lower()]) == 0
    assert cli.main(["class", "list", str(folder)]) == 0
    assert f"{code}  closed" in capsys.readouterr().out
    assert cli.main(["class", "forget", str(folder), "--days", "0"]) == 0
    assert cli.main(["class", "list", str(tmp_path / "typo")]) == 2
    assert "no class store" in capsys.readouterr().err
    with pytest.raises(cli.CommandError, match="no class store"):
        cli.open_class(tmp_path / "typo", create=False)     # `teacher` on a mistyped folder
    assert not (tmp_path / "typo").exists()


def test_the_teachers_view_refreshes_without_leaving_widgets_behind(store):
    import ipywidgets as ipw
    code = store.open_class()
    net = bpv.mlp([2, 3, 1], activation="sigmoid", loss="logistic", seed=0)
    view = bpv.TeacherView(store.folder, code, refresh=0,
                           stepper=bpv.Stepper(net, np.array([1.0, -2.0]), 1.0))
    for i in range(3):
        store.add(event(code, student=f"s{i}", step=7 + i % 2))
        view.update()
    before = len(ipw.Widget.widgets)
    for i in range(20):                       # more answers at the same steps: nothing new
        store.add(event(code, student=f"t{i}", step=7 + i % 2))
        assert view.update()
    assert len(ipw.Widget.widgets) == before and view.summary.events == 23
    assert [r.children[1].description for r in view.table.children[1:]] == ["open 7", "open 8"]
    view.close()
    assert len(ipw.Widget.widgets) < before


def test_one_student_flooding_another_network_does_not_take_the_class_over():
    c = "ABCDEF"
    evs = [event(c, student=s, step=7) for s in ("a", "b", "c")]
    evs += [event(c, student="mallory", fingerprint="f" * 16, step=2) for _ in range(50)]
    s = summarize(evs)
    assert s.fingerprint == "0" * 16 and s.students == 3 and s.left_out == 50
