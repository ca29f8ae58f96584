"""A teacher without the repository: ``pip install backpropviz`` brings the lessons, the teacher's
guide and the classroom set-up as package data, and the ``backpropviz`` command puts them to work
(backpropviz/cli.py).

* The slow test builds the wheel from a copy of this repository (``pip wheel``), installs it with
  its dependencies (not the [lab] extra) into a fresh virtual environment, and from a folder
  outside the repository runs the installed ``backpropviz`` console script and
  ``python -m backpropviz``: ``lessons DIR`` copies every lesson and the guide, the JS/CSS of the
  widgets are found (``import backpropviz.widgets.view``), the help works, and ``lab`` and
  ``classroom`` say what to install when JupyterLab and Voilà are missing.
* The others run the command's parts in this environment: the student copy of 05_exercises is
  nbgrader's release of it; copying never overwrites a learner's work; the servers are started
  as ./dev starts them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from backpropviz import cli
from helpers import nbgrader_course

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
STUDENTS = [n for n in LESSONS if n != "09_teacher.ipynb"]     # the teacher's view: theirs only
# what a build of this repository never needs: environments, caches, outputs of other tools
NOT_COPIED = (".venv", ".git", "artifacts", ".hypothesis", "__pycache__", ".ruff_cache",
              ".pytest_cache", ".ipynb_checkpoints", "*.egg-info", "build", "dist",
              "node_modules")


def _run(cmd, cwd, timeout=600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, (f"{' '.join(done.args)} exited with {done.returncode}:\n"
                                  f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


# --- the wheel, installed in a fresh environment --------------------------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh environment's python, its bin folder, a folder outside the repository, the
    wheel's file names, seconds to build, seconds to install)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv, work = tmp / "src", tmp / "dist", tmp / "venv", tmp / "work"
    # a copy: pip builds in the source tree (build/, *.egg-info), which others use meanwhile
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    t0 = time.monotonic()
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist,
              src], cwd=tmp))
    t_build = time.monotonic() - t0
    wheels = list(dist.glob("backpropviz-*.whl"))
    assert len(wheels) == 1, wheels
    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()

    t0 = time.monotonic()
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp))
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    # this environment's pip installs into the new one (--python): the wheel and its
    # dependencies, not the [lab] extra (JupyterLab, Voilà)
    _ok(_run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
              "--disable-pip-version-check", wheels[0]], cwd=tmp, timeout=900))
    t_install = time.monotonic() - t0
    work.mkdir()
    print(f"wheel built in {t_build:.1f} s, installed with its dependencies in {t_install:.1f} s")
    return python, bindir, work, names, t_build, t_install


def _env(bindir: Path) -> dict:
    """A clean environment for the installed command: nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["BPV_LAYOUT_CACHE"] = "off"
    return env


@pytest.mark.slow
def test_the_wheel_holds_the_package_the_lessons_and_the_classroom(installed):
    *_, names, _, _ = installed
    names = set(names)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "backpropviz").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules - names == set(), "modules of backpropviz/ missing from the wheel " \
                                     "(a subpackage not listed in pyproject.toml?)"
    assert {f"backpropviz/notebooks/{n}" for n in LESSONS + ["README.md"]} <= names
    assert {"backpropviz/classroom/voila.json", "backpropviz/classroom/warm_layouts.py"} <= names
    assert {f"backpropviz/widgets/{n}" for n in ("stepper.js", "stepper.css", "pagestyle.js",
                                                 "lab.css")} <= names
    entry = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert len(entry) == 1
    assert not [n for n in names if "ruff_cache" in n or "__pycache__" in n or ".ipynb_check" in n]


@pytest.mark.slow
def test_the_installed_command_copies_every_lesson_and_the_guide(installed):
    python, bindir, work, *_ = installed
    env = _env(bindir)
    exe = bindir / ("backpropviz.exe" if os.name == "nt" else "backpropviz")
    assert exe.is_file(), "no console script 'backpropviz' in the environment"

    # the package is the wheel's, not this checkout, and its widgets find their JS and CSS
    where = _ok(_run([python, "-c", textwrap.dedent("""\
        import backpropviz, backpropviz.widgets.view, backpropviz.widgets.pagestyle
        from backpropviz import cli
        from backpropviz.widgets import view, pagestyle
        from pathlib import Path
        here = Path(view.__file__).parent      # anywidget read them when the classes were made
        for name in ("stepper.js", "stepper.css", "pagestyle.js", "lab.css"):
            assert (here / name).is_file(), name
        assert "export default" in str(view.StepperBar._esm), "stepper.js not read"
        print(backpropviz.__file__, cli.shipped("notebooks"), cli.shipped("classroom"))
        """)], cwd=work, env=env)).split()
    venv = python.parent.parent.resolve()
    for path in where:
        assert Path(path).resolve().is_relative_to(venv), (path, venv)

    out = _ok(_run([exe, "--help"], cwd=work, env=env))
    assert all(c in out for c in ("lessons", "lab", "classroom"))
    out = _ok(_run([exe, "classroom", "--help"], cwd=work, env=env))
    assert "--students" in out
    out = _ok(_run([python, "-m", "backpropviz", "lessons", "--help"], cwd=work, env=env))
    assert "--teacher" in out

    out = _ok(_run([exe, "lessons", "class"], cwd=work, env=env))
    got = sorted(p.name for p in (work / "class").iterdir() if not p.name.startswith("."))
    assert got == STUDENTS + ["README.md"], out
    guide = (ROOT / "notebooks" / "README.md").read_bytes()
    assert (work / "class" / "README.md").read_bytes() == guide
    expected = cli.lesson_files()                # the student copies, made here from the checkout
    for name in STUDENTS:
        assert (work / "class" / name).read_bytes() == expected[name], name
    student = (work / "class" / "05_exercises.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in student and "raise NotImplementedError()" in student
    # a second run changes nothing; the teacher's copies (python -m backpropviz) are the lessons
    assert "already has" in _ok(_run([exe, "lessons", "class"], cwd=work, env=env))
    _ok(_run([python, "-m", "backpropviz", "lessons", "--teacher", "teacher"], cwd=work, env=env))
    for name in LESSONS:
        assert (work / "teacher" / name).read_bytes() == (ROOT / "notebooks" / name).read_bytes()


@pytest.mark.slow
def test_lab_and_classroom_say_what_to_install_without_the_lab_extra(installed):
    python, bindir, work, *_ = installed
    env = _env(bindir)
    for command in ("lab", "classroom"):
        done = _run([python, "-m", "backpropviz", command, f"{command}-dir", "--no-browser"],
                    cwd=work, env=env, timeout=120)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "pip install 'backpropviz[lab]'" in done.stderr
        assert not (work / f"{command}-dir").exists()        # nothing copied for nothing


# --- the command's parts, in this environment -----------------------------------------------------
def test_every_package_is_listed_in_pyproject():
    """A folder mapped with package-dir is packaged only when listed, so pyproject.toml lists the
    packages by hand: every subpackage of backpropviz/ must be there (the wheel test checks the
    wheel itself)."""
    tomllib = pytest.importorskip("tomllib")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "backpropviz").rglob("__init__.py")}
    assert set(conf["packages"]) == found | {"backpropviz.notebooks", "backpropviz.classroom"}
    assert conf["package-dir"] == {"backpropviz.notebooks": "notebooks",
                                   "backpropviz.classroom": "classroom"}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"backpropviz": "backpropviz.cli:main"}


def test_the_lessons_are_found_in_the_checkout():
    assert cli.shipped("notebooks").resolve() == (ROOT / "notebooks").resolve()
    assert cli.shipped("classroom").resolve() == (ROOT / "classroom").resolve()
    assert [p.name for p in cli.lesson_sources()] == LESSONS + ["README.md"]


@pytest.mark.slow
def test_the_student_copy_of_the_exercises_is_nbgraders_release(tmp_path):
    """What `nbgrader generate_assignment` releases, cell for cell: sources, outputs, locks."""
    pytest.importorskip("nbgrader")
    course, nbgrader = nbgrader_course(tmp_path)
    nbgrader("generate_assignment", "ps1")
    released = json.loads((course / "release" / "ps1" / "05_exercises.ipynb").read_text())
    ours = json.loads(cli.lesson_files()["05_exercises.ipynb"])

    def view(nb):
        return [(c["cell_type"], cli._text(c["source"]).rstrip("\n"), c.get("outputs"),
                 c.get("execution_count"), c["metadata"].get("editable"),
                 c["metadata"].get("deletable")) for c in nb["cells"]]
    assert view(ours) == view(released)
    solutions = [c for c in ours["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    assert len(solutions) == 4
    assert all(cli._text(c["source"]).count("raise NotImplementedError()") >= 1 for c in solutions)


def test_the_student_copy_hides_solutions_and_the_teachers_keeps_them():
    student, teacher = cli.lesson_files(), cli.lesson_files(teacher=True)
    assert set(teacher) == set(LESSONS) | {"README.md"}
    assert set(student) == set(STUDENTS) | {"README.md"}
    for name in teacher:
        assert teacher[name] == (ROOT / "notebooks" / name).read_bytes()
        if name == "README.md":
            assert student[name] == teacher[name]
        elif name == "09_teacher.ipynb":
            assert name not in student
        elif name != "05_exercises.ipynb":       # the same but for the teacher's answer sheet
            assert json.loads(student[name]) == cli.without_teacher_cells(
                json.loads(teacher[name])), name
            assert len(json.loads(student[name])["cells"]) < len(json.loads(teacher[name])["cells"]) \
                or name == "06_classroom.ipynb"
    text = student["05_exercises.ipynb"].decode()
    assert "BEGIN SOLUTION" not in text and "np.exp(-z)" not in text and "v.sum(axis=1)" not in text
    assert all(not c.get("outputs") for c in json.loads(text)["cells"])
    # an unmarked solution region or an unclosed one is refused, not copied half-cleared
    bad = {"cells": [{"cell_type": "code", "metadata": {}, "source": "### BEGIN SOLUTION\nx\n"
                      "### END SOLUTION", "outputs": []}]}
    with pytest.raises(cli.CommandError, match="not marked"):
        cli.student_version(bad)
    bad["cells"][0]["metadata"]["nbgrader"] = {"solution": True}
    bad["cells"][0]["source"] = "### BEGIN SOLUTION\nx"
    with pytest.raises(cli.CommandError, match="without"):
        cli.student_version(bad)


def test_copying_never_overwrites_a_learners_work(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "lessons"
    assert cli.main(["lessons", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [cli.MANIFEST, *STUDENTS, "README.md"])
    mine = dest / "03_modules.ipynb"
    mine.write_text("my work")
    (dest / "01_chain_rule.ipynb").unlink()
    capsys.readouterr()
    assert cli.main(["lessons", str(dest)]) == 0
    out = capsys.readouterr().out
    assert mine.read_text() == "my work" and "kept" in out and "03_modules.ipynb" in out
    again = (dest / "01_chain_rule.ipynb").read_bytes()
    assert again == cli.lesson_files()["01_chain_rule.ipynb"]        # its student copy, again

    # a newer release: files as copied are brought up to date, the learner's are kept
    shipped = cli.lesson_files()
    newer = {k: v + b" " for k, v in shipped.items()}
    monkeypatch.setattr(cli, "lesson_files", lambda teacher=False: newer)
    done = cli.copy_lessons(dest)
    assert done["kept"] == ["03_modules.ipynb"] and mine.read_text() == "my work"
    assert sorted(done["updated"]) == sorted(set(shipped) - {"03_modules.ipynb"})
    assert (dest / "00_start_here.ipynb").read_bytes() == newer["00_start_here.ipynb"]
    # a file that was there before any copy is not ours either
    other = tmp_path / "other"
    other.mkdir()
    (other / "00_start_here.ipynb").write_text("someone's")
    assert cli.copy_lessons(other)["kept"] == ["00_start_here.ipynb"]
    assert (other / "00_start_here.ipynb").read_text() == "someone's"


def test_the_command_refuses_what_it_cannot_do(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert cli.main(["lessons", str(tmp_path / "f")]) == 2
    assert cli.main(["lessons", str(ROOT / "notebooks")]) == 2
    assert "shipped from" in capsys.readouterr().err
    for bad in ("0", "201", "thirty"):
        with pytest.raises(SystemExit) as e:
            cli.main(["classroom", str(tmp_path / "c"), "--students", bad])
        assert e.value.code == 2
    assert cli.main([]) == 2


def test_lab_and_classroom_start_as_dev_starts_them(tmp_path):
    """The server commands: JupyterLab on the folder with 00 open; Voilà with the classroom
    configuration and a pool of one kernel per student (./dev voila --students N does the same:
    tests/test_classroom_server.py)."""
    d = tmp_path / "x"
    lab = cli.lab_command(d, ["--no-browser"])
    assert lab[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={d.resolve()}" in lab and lab[-1] == str(d.resolve() / cli.FIRST)
    assert ("--allow-root" in lab) == (hasattr(os, "geteuid") and os.geteuid() == 0)
    voila = cli.classroom_command(d, 30, ["--Voila.ip=0.0.0.0"])
    assert voila == [sys.executable, "-m", "voila", str(d.resolve()),
                     f"--Voila.config_file_paths={ROOT / 'classroom'}", "--pool_size=30",
                     "--Voila.ip=0.0.0.0"]
    assert cli.warm_command(d)[1:] == [str(ROOT / "classroom" / "warm_layouts.py"),
                                       str(d.resolve() / cli.APP)]
    # our options and DIR, and what goes on to the server (DIR first; --name value pairs kept)
    assert cli._split(["room", "--students", "30", "--port", "8867", "--no-browser"],
                      {"-h", "--help"}, {"--students"}) == (
        ["room", "--students", "30"], ["--port", "8867", "--no-browser"])
    assert cli._split(["--students=3", "--", "--students", "x"], set(), {"--students"}) == (
        ["--students=3"], ["--students", "x"])
