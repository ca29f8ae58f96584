"""The classroom set-up: ``./dev voila`` with classroom/voila.json.

* The configuration itself: every setting names a real option of the class it is for (a typo
  would be ignored by Voilà with a warning in its log), with the values the README promises, and
  the pre-heat pool covers the classroom app and no other lesson (Voilà matches its deny-list
  against absolute paths).
* The class size: ``./dev voila --students N`` (and ``backpropviz classroom --students N``) sets
  the pool of pre-heated kernels to N; without it the pool is voila.json's, 1 (one learner).
* The server: started with the arguments of ./dev's ``voila)`` case (read from ./dev), on
  127.0.0.1, a free port, a token and temporary Jupyter directories, for a class of 2 (the pool
  ``--students 2`` asks for, ``bench.class_args(2)``): 30 kernels would cost a minute of CPU
  here. A student is simulated at the protocol level with the load benchmark's
  client (benchmarks/bench_classroom.py): the page comes from a pre-heated kernel and is complete;
  over the kernel websocket the ipywidgets control comm returns the Stepper's widgets; pressing
  "step ▶" (a comm message) brings back the graph of step 1; the kernel talks over IPC sockets;
  the idle culler runs.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "classroom"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_classroom",
                                                  ROOT / "benchmarks" / "bench_classroom.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


# --- the configuration ---------------------------------------------------------------------------
def shipped() -> dict:
    return json.loads((CONFIG / "voila.json").read_text())


def configurables() -> dict:
    from jupyter_client.manager import KernelManager
    from jupyter_server.services.kernels.kernelmanager import (AsyncMappingKernelManager,
                                                               MappingKernelManager)
    from voila.configuration import VoilaConfiguration
    from voila.execute import VoilaExecutor
    from voila.voila_kernel_manager import voila_kernel_manager_factory
    return {"VoilaConfiguration": VoilaConfiguration, "VoilaExecutor": VoilaExecutor,
            "KernelManager": KernelManager, "MappingKernelManager": MappingKernelManager,
            "VoilaKernelManager": voila_kernel_manager_factory(AsyncMappingKernelManager, True, 1)}


def test_dev_voila_serves_the_lessons_with_the_classroom_config():
    """./dev voila is `backpropviz classroom DIR`: the student copies in DIR, served by Voilà with
    the classroom configuration (classroom/voila.json)."""
    assert bench.dev_voila_command() == ["-m", "backpropviz", "classroom",
                                         "backpropviz-classroom"]
    from backpropviz import cli
    cmd = cli.classroom_command(ROOT / "somewhere", 1)
    assert cmd[1:3] == ["-m", "voila"]
    assert f"--Voila.config_file_paths={ROOT / 'classroom'}" in cmd
    assert (ROOT / "classroom" / "voila.json").is_file()


def test_the_class_size_sets_the_pool():
    """--students N gives Voilà --pool_size=N (once: a --pool_size of the teacher's wins, since
    Voilà refuses the option twice); what is not a class size is refused before anything runs."""
    from backpropviz import cli
    assert bench.class_args(30) == ["--students=30"]
    assert cli.classroom_command(ROOT, 30)[-1] == "--pool_size=30"
    both = cli.classroom_command(ROOT, 30, ["--pool_size=3"])
    assert [a for a in both if a.startswith("--pool_size")] == ["--pool_size=3"]
    for bad, said in ((["--students", "0"], "from 1 to 200"), (["--students=201"], "from 1 to 200"),
                      (["--students", "thirty"], "whole number"), (["--students"], "expected")):
        done = subprocess.run([str(ROOT / "dev"), "voila", *bad], capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 2 and said in done.stderr, (bad, done.stderr[-500:])


def test_every_setting_is_a_real_option():
    classes = configurables()
    for section, options in shipped().items():
        assert section in classes, f"voila.json: no configurable class {section}"
        cls = classes[section]
        for name in options:
            trait = cls.class_traits(config=True).get(name)
            assert trait is not None, f"voila.json: {section} has no option {name!r}"


def test_the_settings_the_readme_promises():
    c = shipped()
    assert c["VoilaConfiguration"]["preheat_kernel"] is True
    assert c["VoilaConfiguration"]["default_pool_size"] == 1    # one learner; a class: --students
    assert c["VoilaExecutor"]["iopub_timeout"] == 60
    assert c["KernelManager"]["transport"] == "ipc"
    assert c["MappingKernelManager"]["cull_idle_timeout"] > 0
    assert c["MappingKernelManager"]["cull_connected"] is False        # never a student's open tab
    # a student past the pool waits at most fill_delay for a kernel to start
    assert 0 < c["VoilaKernelManager"]["fill_delay"] <= 120


def test_only_the_classroom_app_is_preheated():
    """Voilà's own filter, on the absolute paths it gives it: a pool for 06_classroom only."""
    km = configurables()["VoilaKernelManager"]
    me = SimpleNamespace(preheat_denylist=shipped()["VoilaKernelManager"]["preheat_denylist"])
    pooled = [p.name for p in sorted((ROOT / "notebooks").resolve().rglob("*.ipynb"))
              if km._notebook_filter(me, p)]
    assert pooled == [bench.NOTEBOOK]


# --- the server ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = bench.ClassroomServer(tmp_path_factory.mktemp("classroom-voila"), bench.class_args(2))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        left = [pid for pid in getattr(srv, "kernels_at_stop", ()) if bench.alive(pid)]
        assert not left, f"kernels left running after the server stopped: {left}"


def test_the_classroom_app_comes_up_preheated_and_works(server):
    t_pool = server.wait_pool()
    assert t_pool is not None, ("no kernel pool for the classroom app; the log:\n"
                                + server.log_tail())

    async def student():
        s = bench.Student(server, bench.expected_outputs())
        await s.open(time.monotonic())
        try:
            assert s.failed_page is None, f"the page: {s.failed_page}\n{server.log_tail()}"
            start = s.view.step()
            new = await s.click("bpv-next")
            return s, start, new
        finally:
            s.close()

    s, start, new = asyncio.run(asyncio.wait_for(student(), 180))
    assert (start, new) == (0, 1)
    assert s.view.n() > 1
    log = server.log()
    assert f"Using pre-heated kernel: {s.kernel_id} for {bench.NOTEBOOK}" in log, log[-3000:]
    assert "Timeout waiting for IOPub output" not in log
    assert re.search(r"Culling kernels with idle durations > \d+ seconds", log), log[-3000:]
    pid = server.kernels()[s.kernel_id]
    conn = re.search(r"-f (\S+\.json)", bench.cmdline(pid)).group(1)
    assert json.loads(Path(conn).read_text())["transport"] == "ipc"
