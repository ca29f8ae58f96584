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
APPS = {"06_classroom", "09_teacher"}    # the Voilà apps: no lesson frame around them


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


# --- no rounding noise in what a lesson prints ------------------------------------------------------
# A difference at rounding level (2.2e-16 on one CPU, 4.4e-16 on another) printed as a number fails
# strict nbval on the next machine. Lessons state such differences against a tolerance instead.
NOISE_BELOW = 1e-12
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_FLOAT = re.compile(r"(?<![\w.])[-+−]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+−]?\d+)?(?!\w)")
_TIMES_TEN = re.compile(r"(\d+(?:\.\d+)?)\s*(?:×|\\times|·|\\cdot)\s*10\s*(?:\^\{?\s*)?"
                        r"([-−⁻][\d⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
NO_COMPARE = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")


def tiny_numbers(text: str) -> list[str]:
    """The numbers in ``text`` whose magnitude is below NOISE_BELOW but not 0 (1e-16, 2.2×10⁻¹⁶)."""
    text = _DATA_URI.sub("", text)
    found = []
    for m in _TIMES_TEN.finditer(text):
        if 0 < float(m.group(1)) * 10.0 ** int(m.group(2).translate(_SUP).replace("−", "-")) \
                < NOISE_BELOW:
            found.append(m.group(0))
    for m in _FLOAT.finditer(_TIMES_TEN.sub(" ", text)):
        try:
            x = abs(float(m.group(0).replace("−", "-")))
        except ValueError:
            continue
        if 0 < x < NOISE_BELOW:
            found.append(m.group(0))
    return found


def output_texts(cell) -> list[str]:
    """Every text an executed cell shows that nbval compares: streams and text-like outputs."""
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append(value if isinstance(value, str) else "".join(value))
        if out.get("output_type") == "error":
            texts.append("\n".join(out.get("traceback", [])))
    return texts


def rounding_noise(nb) -> list[str]:
    """Where a notebook prints a number below NOISE_BELOW in a cell whose output nbval compares."""
    found = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or any(mark in c.source for mark in NO_COMPARE):
            continue
        found += [f"cell {i}: {n}" for t in output_texts(c) for n in tiny_numbers(t)]
    return found


def test_the_noise_scan_finds_what_it_should():
    """The scan can fail: it finds a rounding-level difference however it is printed."""
    for shown in ("largest difference 2.2e-16; same: True", "diff = -4.4E-16.", "1.1e-13",
                  "0.0000000000001", "[0.5, 3.3e-17]", "2.2 × 10⁻¹⁶", r"$2.2 \times 10^{-16}$"):
        assert tiny_numbers(shown), shown
    for shown in ("agree to 1e-12: True", "0.0", "1e-08", "-0.0", "J = 0.0003", "step 1e-6",
                  "version 1.2.3", "W[1]_21 = 1e+200", "<img src='data:image/png;base64,AAe-16'>"):
        assert not tiny_numbers(shown), shown
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(d)", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text="difference 2.2e-16\n")]),
                nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(d)", outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="2.2e-16\n")])]
    assert rounding_noise(nb) == ["cell 0: 2.2e-16"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_lesson_prints_rounding_noise(nb):
    """Nothing a lesson prints depends on the CPU's or the BLAS's order of sums."""
    assert rounding_noise(read(nb)) == [], (
        f"{nb.name} prints differences at rounding level, which change from one CPU to the next: "
        f"state them against a tolerance ('agree to 1e-12: True') or round them")


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
    assert "bpv.exit_questions(" in tail and "quiz.key()" in tail


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
