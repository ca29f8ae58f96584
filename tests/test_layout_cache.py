"""The layout cache on disk, shared by the processes of one machine (display/layout.py): a second
process draws from it without running Graphviz and draws the same SVG; an entry that is damaged,
foreign or too large is ignored, deleted and laid out again; writes are atomic and bounded; a folder
that cannot be written and BPV_LAYOUT_CACHE=off leave layouts in the process only, without an error.

Every test points BPV_LAYOUT_CACHE at its own temporary folder: none touches ~/.cache."""
import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz.display import draw, engines, layout
from backpropviz.display.layout import cache_dir, forget_layouts


def _has_engine() -> bool:
    try:
        return bool(draw.find_engine())
    except draw.EngineMissing:
        return False


pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(not _has_engine(), reason="no Graphviz engine installed here")]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("BPV_LAYOUT_CACHE", str(folder))
    forget_layouts()
    yield folder
    forget_layouts()


@pytest.fixture
def runs(monkeypatch):
    """The Graphviz runs of this process (every run goes through engines.run_engine)."""
    real, calls = engines.run_engine, []
    monkeypatch.setattr(engines, "run_engine", lambda src, fmt="json", engine=None:
                        calls.append(fmt) or real(src, fmt, engine))
    return calls


def net_trace():
    return bpv.mlp([2, 3, 1], seed=0).backprop([0.1, 0.2], 1)


def svgs(*traces) -> list[str]:
    return [bpv.render(t, k).svg for t in traces for k in (0, 7, len(t))]


def entries(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


# a process of its own: draws the 2-3-1 network and its scalar circuit; "no-graphviz": any
# Graphviz run fails it. Prints its Graphviz runs and a digest of the SVGs.
CHILD = """
import hashlib, sys
import backpropviz as bpv
from backpropviz.display import engines
runs, real = [], engines.run_engine
def run_engine(src, fmt="json", engine=None):
    runs.append(fmt)
    assert sys.argv[1] != "no-graphviz", "Graphviz ran"
    return real(src, fmt, engine)
engines.run_engine = run_engine
tr = bpv.mlp([2, 3, 1], seed=0).backprop([0.1, 0.2], 1)
svgs = [bpv.render(t, k).svg for t in (tr, bpv.circuit(tr)) for k in (0, 7, len(t))]
print(len(runs), hashlib.sha256("".join(svgs).encode()).hexdigest())
"""


def child(folder, mode: str, hash_seed: str) -> subprocess.Popen:
    env = dict(os.environ, BPV_LAYOUT_CACHE=str(folder), PYTHONHASHSEED=hash_seed)
    return subprocess.Popen([sys.executable, "-c", CHILD, mode], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    n, digest = out.split()
    return int(n), digest


def test_a_second_process_draws_from_the_cache_without_graphviz(cache, monkeypatch):
    monkeypatch.setenv("BPV_LAYOUT_CACHE", "off")          # the reference: laid out here, fresh
    tr = net_trace()
    fresh = hashlib.sha256("".join(svgs(tr, bpv.circuit(tr))).encode()).hexdigest()
    # two processes with different string hashing: the key does not depend on it
    assert result(child(cache, "graphviz", "1")) == (2, fresh)         # cold: lays out, stores
    assert len(entries(cache)) == 2
    assert result(child(cache, "no-graphviz", "2")) == (0, fresh)      # warm: reads only


def test_cached_and_fresh_layouts_draw_byte_identical_svg(cache, runs):
    tr = net_trace()
    views = (tr, bpv.circuit(tr), bpv.circuit(tr, expand="M_1"))
    fresh = svgs(*views)
    assert runs == ["json"] * 3 and len(entries(cache)) == 3
    forget_layouts()                                        # this process forgets; the disk not
    assert svgs(*views) == fresh and runs == ["json"] * 3
    # another trace of the same graph (other numbers) uses the same entry
    other = bpv.mlp([2, 3, 1], seed=5).backprop([-3.0, 0.5], 0)
    forget_layouts()
    assert bpv.render(other, 4).svg
    assert runs == ["json"] * 3 and len(entries(cache)) == 3


def test_the_layouts_of_this_process_stay_in_front_of_the_disk(cache, runs):
    tr = net_trace()
    assert bpv.render(tr, 3).svg
    for name in entries(cache):
        os.remove(cache / name)
    assert bpv.render(tr, 5).svg
    assert runs == ["json"] and entries(cache) == []


def _damage(kind: str, path):
    data = json.loads(path.read_text())
    if kind == "truncated":
        path.write_text(path.read_text()[: path.stat().st_size // 2])
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "huge":               # a sparse file: larger than an entry may be, never read
        with open(path, "r+b") as f:
            f.truncate(layout.MAX_ENTRY_BYTES + 1)
        return
    if kind == "fifo":
        os.remove(path)
        os.mkfifo(path)
        return
    edit = {
        "a box fewer": lambda d: d["boxes"].pop(),
        "an edge more": lambda d: d["edges"].append(d["edges"][0]),
        "a string for a number": lambda d: d["boxes"][0].__setitem__(0, "12.5"),
        "a boolean for the width": lambda d: d.__setitem__("width", True),
        "a NaN": lambda d: d.__setitem__("height", float("nan")),
        "a script in a path": lambda d: d["edges"][0].__setitem__(
            0, 'M1.0,2.0 C3.0,4.0"/><script>alert(1)</script>'),
        "another graph's key": lambda d: d.__setitem__("key", "0" * 40),
        "another format": lambda d: d.__setitem__("format", True),
        "a field more": lambda d: d.__setitem__("note", "hello"),
        "a list for the entry": lambda d: None,
    }[kind]
    edit(data)
    if kind == "a list for the entry":
        data = [data]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("kind", [
    "truncated", "empty", "huge", "fifo", "a box fewer", "an edge more", "a string for a number",
    "a boolean for the width", "a NaN", "a script in a path", "another graph's key",
    "another format", "a field more", "a list for the entry"])
def test_a_damaged_entry_is_ignored_deleted_and_laid_out_again(cache, runs, kind):
    if kind == "fifo" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    tr = net_trace()
    fresh = svgs(tr)
    (name,) = entries(cache)
    _damage(kind, cache / name)
    forget_layouts()
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert svgs(tr) == fresh
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert runs == ["json", "json"]                         # laid out again
    if kind == "huge":
        assert peak < layout.MAX_ENTRY_BYTES // 4           # refused unread
    entry = json.loads((cache / name).read_text())          # and stored again, whole
    assert entries(cache) == [name] and entry["key"] == name[:-5]
    forget_layouts()
    assert svgs(tr) == fresh and runs == ["json", "json"]   # read from then on


def test_a_folder_in_the_place_of_an_entry_is_no_error(cache, runs):
    tr = net_trace()
    fresh = svgs(tr)
    (name,) = entries(cache)
    os.remove(cache / name)
    (cache / name).mkdir()
    forget_layouts()
    assert svgs(tr) == fresh and runs == ["json", "json"]


def test_a_write_is_whole_or_nothing(cache, runs, monkeypatch):
    """A write that fails before its rename leaves nothing; concurrent writers each write a
    whole file (test below); a temporary file left by a writer that died goes after an hour."""
    cache.mkdir()
    old, recent = cache / f".{'a' * 40}.x1.tmp", cache / f".{'b' * 40}.x2.tmp"
    for f, age in ((old, 2 * 3600), (recent, 60)):
        f.write_text("{")
        os.utime(f, (time.time() - age, time.time() - age))
    real = os.replace

    def failing(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", failing)
    tr = net_trace()
    fresh = svgs(tr)
    assert runs == ["json"] and entries(cache) == sorted([old.name, recent.name])
    monkeypatch.setattr(os, "replace", real)
    forget_layouts()
    assert svgs(tr) == fresh
    tmp, name = entries(cache)                           # "." sorts first
    assert tmp == recent.name and name.endswith(".json")
    assert json.loads((cache / name).read_text())["key"] == name[:-5]


def test_concurrent_writers_leave_whole_entries(cache):
    procs = [child(cache, "graphviz", str(i)) for i in range(4)]    # all start with no entry
    got = {result(p)[1] for p in procs}
    assert len(got) == 1
    names = entries(cache)
    assert len(names) == 2 and all(n.endswith(".json") for n in names)      # no temporary file
    assert result(child(cache, "no-graphviz", "9"))[1] in got


def test_the_size_bounds_evict_the_least_recently_used(cache, monkeypatch, tmp_path):
    graphs = [bpv.trace(f, np.array([0.5, 1.0])) for f in
              (lambda z: (z ** 2).sum(), lambda z: z.sin().sum(), lambda z: (z * 3.0).sum(),
               lambda z: (z + 1.0).exp().sum())]
    (cache / "notes.json").parent.mkdir()
    (cache / "notes.json").write_text("{}")             # not an entry's name: never touched
    made = []
    for i, g in enumerate(graphs[:2]):
        bpv.render(g, 0)
        (new,) = set(entries(cache)) - set(made) - {"notes.json"}
        made.append(new)
        os.utime(cache / new, (1000 + i, 1000 + i))       # distinct ages, whatever the clock
    a, b = made
    forget_layouts()
    bpv.render(graphs[0], 0)                            # read from disk: a is used now
    monkeypatch.setattr(layout, "MAX_DISK_ENTRIES", 2)
    bpv.render(graphs[2], 0)
    c = (set(entries(cache)) - {a, b, "notes.json"}).pop()
    assert entries(cache) == sorted([a, c, "notes.json"])          # b, the oldest, went
    # bytes: room for d's entry and c's, not a's
    monkeypatch.setenv("BPV_LAYOUT_CACHE", str(tmp_path / "scratch"))
    bpv.render(graphs[3], 0)
    (d,) = entries(tmp_path / "scratch")
    size_d = (tmp_path / "scratch" / d).stat().st_size
    monkeypatch.setenv("BPV_LAYOUT_CACHE", str(cache))
    forget_layouts()
    os.utime(cache / a, (1000, 1000))
    os.utime(cache / c, (2000, 2000))
    monkeypatch.setattr(layout, "MAX_DISK_ENTRIES", 10)
    monkeypatch.setattr(layout, "MAX_DISK_BYTES", size_d + (cache / c).stat().st_size)
    bpv.render(graphs[3], 0)
    assert entries(cache) == sorted([c, d, "notes.json"])
    forget_layouts(disk=True)                           # empties the cache, and only that
    assert entries(cache) == ["notes.json"]


@pytest.mark.parametrize("where", ["under a file", "a file"])
def test_a_folder_that_cannot_be_written_is_no_error(tmp_path, monkeypatch, runs, where):
    (tmp_path / "f").write_text("not a folder")
    folder = tmp_path / "f" / "cache" if where == "under a file" else tmp_path / "f"
    monkeypatch.setenv("BPV_LAYOUT_CACHE", str(folder))
    forget_layouts()
    tr = net_trace()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = svgs(tr)
        forget_layouts()
        assert svgs(tr) == first
    assert runs == ["json", "json"]                     # in this process only
    assert (tmp_path / "f").read_text() == "not a folder"
    forget_layouts()


@pytest.mark.parametrize("value", ["off", "OFF", ""])
def test_off_or_empty_switches_the_disk_cache_off(tmp_path, monkeypatch, runs, value):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BPV_LAYOUT_CACHE", value)
    forget_layouts()
    tr = net_trace()
    assert bpv.render(tr, 0).svg
    forget_layouts()
    assert bpv.render(tr, 0).svg
    assert runs == ["json", "json"] and cache_dir() is None
    assert os.listdir(tmp_path) == []
    forget_layouts()


def test_the_folder_follows_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("BPV_LAYOUT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "backpropviz" / "layouts"
    forget_layouts()
    bpv.render(net_trace(), 0)
    assert len(entries(tmp_path / "xdg" / "backpropviz" / "layouts")) == 1
    forget_layouts()
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")          # not absolute: ignored
    assert cache_dir() == tmp_path / "home" / ".cache" / "backpropviz" / "layouts"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "backpropviz" / "layouts"
