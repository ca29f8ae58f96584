"""The lessons as a teacher receives them: built from their sources, covering §7.4's equations,
each with what it teaches, a summary and exit questions; and the commands that open them."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_lessons  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
TAGS = [f"(7.{n})" for n in range(52, 81)] + ["(F)", "(B1)", "(B2)"]
APPS = {"06_classroom"}          # the Voilà app: no lesson frame around it


def read(path):
    return nbformat.read(path, as_version=4)


def shown_text(nb) -> str:
    """What a reader sees: the markdown, and the text the code printed."""
    parts = []
    for c in nb.cells:
        if c.cell_type == "markdown":
            parts.append(c.source)
        for out in c.get("outputs", []):
            parts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_lessons_and_sources():
    assert len(NOTEBOOKS) >= 2
    assert {p.stem for p in NOTEBOOKS} == {p.stem for p in build_lessons.sources()}


@pytest.mark.parametrize("src", build_lessons.sources(), ids=lambda p: p.stem)
def test_every_notebook_is_built_from_its_source(src):
    assert build_lessons.out_of_date(src) is None


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_code_cell_has_stored_outputs_or_prints_nothing(nb):
    """Strict nbval compares what is stored: a lesson is committed executed."""
    book = read(nb)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "run ./dev lessons"


def test_every_equation_tag_of_the_notes_is_shown_in_a_lesson():
    text = "\n".join(shown_text(read(p)) for p in NOTEBOOKS)
    missing = [t for t in TAGS if t not in text]
    assert not missing, f"no lesson shows {missing}"


@pytest.mark.parametrize("nb", [p for p in NOTEBOOKS if p.stem not in APPS], ids=lambda p: p.stem)
def test_a_lesson_says_what_it_teaches_and_ends_with_checked_exit_questions(nb):
    book = read(nb)
    md = [c.source for c in book.cells if c.cell_type == "markdown"]
    first = md[0].lower()
    assert "what you will learn" in first and "what you need" in first
    tail = "\n".join(c.source for c in book.cells[-6:])
    assert re.search(r"(?i)summary", "\n".join(md[-4:]))
    assert re.search(r"(?i)exit question", tail)
    assert "bpv.Question(" in tail and ".check(" in tail


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_point_to_nothing_the_repository_does_not_have(nb):
    text = shown_text(read(nb))
    assert "errata.md" not in text and "Ïƒ" not in text


# --- the commands a teacher types ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


@pytest.mark.slow
def test_dev_lab_opens_the_lessons_as_this_machines_user(tmp_path):
    """`./dev lab` starts JupyterLab (as root too, which Jupyter refuses without --allow-root)
    and serves the start lesson."""
    port, token = _free_port(), "bpv-test-token"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen([str(ROOT / "dev"), "lab", "--no-browser", f"--port={port}",
                             "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", "--LabApp.news_url=None"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, status = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(f"http://127.0.0.1:{port}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.3)
        log.seek(0)
        out = log.read()
        assert status == 200, f"JupyterLab did not start:\n{out[-2000:]}"
        if os.geteuid() == 0:
            assert "--allow-root" in out           # and it says why
        code, body = _get(f"http://127.0.0.1:{port}/api/contents/00_start_here.ipynb"
                          f"?token={token}&content=0")
        assert code == 200 and json.loads(body)["type"] == "notebook"
        code, body = _get(f"http://127.0.0.1:{port}/lab/tree/00_start_here.ipynb?token={token}")
        assert code == 200 and b"JupyterLab" in body
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_binder_build_runs_every_lesson(tmp_path):
    """What repo2docker does with binder/: a fresh environment from binder/requirements.txt
    only (its Debian packages, binder/apt.txt, are the ones ./dev installs here), then every
    lesson executed in it."""
    venv = tmp_path / "binder-env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "executed"
    for nb in NOTEBOOKS:
        run = subprocess.run([str(py), "-m", "jupyter", "nbconvert", "--to", "notebook",
                              "--execute", "--ExecutePreprocessor.timeout=300",
                              "--ExecutePreprocessor.kernel_name=python3",
                              f"--output-dir={out}", str(nb)],
                             cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=600,
                             env={**os.environ, "JUPYTER_PATH": str(venv / "share" / "jupyter"),
                                  "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"})
        assert run.returncode == 0, f"{nb.name} failed in the Binder environment:\n" \
                                    + run.stderr[-3000:]
        errors = [o for c in read(out / nb.name).cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
