"""The ``backpropviz`` command (also ``python -m backpropviz``): the lessons, JupyterLab on them and
the classroom app, for a teacher or a learner who installed the package and has no repository.

    backpropviz lessons DIR [--teacher]                 copy the lessons and the guide into DIR
    backpropviz lab [DIR] [--teacher] [ARGS]            copy them if needed, open JupyterLab there
    backpropviz classroom [DIR] [--students N] [ARGS]   copy them if needed, serve the Voilà app

The lessons (``notebooks/*.ipynb`` and the teacher's guide ``notebooks/README.md``) and the
classroom set-up (``classroom/voila.json``, ``classroom/warm_layouts.py``) are package data of a
wheel (``backpropviz/notebooks``, ``backpropviz/classroom``); in a checkout of the repository (an
editable install) they are read from the repository's folders beside the package.

Copying never overwrites what a learner changed: DIR keeps a list of what was copied
(``.backpropviz-lessons.json``, with each file's SHA-256); a file that is missing is copied, a file
as it was copied is brought up to date, and any other file of the same name is kept, with a
message.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from . import __version__

PKG = Path(__file__).resolve().parent
MANIFEST = ".backpropviz-lessons.json"
GUIDE = "README.md"
FIRST = "00_start_here.ipynb"          # what `lab` opens
APP = "06_classroom.ipynb"             # what `classroom` pre-heats (classroom/voila.json)
TEACHER_APP = "09_teacher.ipynb"       # the class's live view: teacher's copies only
DEFAULT_TEACHER_DIR = "backpropviz-teacher"
TEACHER_PORT = 8867
RETENTION_DAYS = 30                    # a class's answers are forgotten after this (README)
MAX_STUDENTS = 200                     # one machine: ~75 MB per pre-heated kernel (README)
DEFAULT_LAB_DIR = "backpropviz-lessons"
DEFAULT_CLASS_DIR = "backpropviz-classroom"

# nbgrader's markers and what its release (`nbgrader generate_assignment`) puts in their place
SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]

class CommandError(Exception):
    """What the command says before it stops (exit status 2), instead of a traceback."""


# --- where the lessons and the classroom set-up are -----------------------------------------------
def shipped(name: str) -> Path:
    """'notebooks' or 'classroom': package data in an installed wheel (backpropviz/<name>), else the
    repository's folder beside the package (a checkout or its editable install)."""
    marker = {"notebooks": FIRST, "classroom": "voila.json"}[name]
    for folder in (PKG / name, PKG.parent / name):
        if (folder / marker).is_file():
            return folder
    raise CommandError(f"this installation of backpropviz has no {name} (looked in {PKG / name} "
                       f"and {PKG.parent / name}); reinstall it from a wheel or the repository")


def lesson_sources() -> list[Path]:
    """The lessons, in order, then the teacher's guide: what a wheel packages (pyproject.toml)."""
    folder = shipped("notebooks")
    if not (folder / GUIDE).is_file():
        raise CommandError(f"this installation of backpropviz has no teacher's guide "
                           f"({folder / GUIDE}); reinstall it from a wheel or the repository")
    return sorted(folder.glob("*.ipynb")) + [folder / GUIDE]


# --- the student copy of a notebook in nbgrader's format ------------------------------------------
def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _replace_regions(text: str, begin: str, end: str, stub: list[str] | None) -> tuple[str, bool]:
    """Each region from a line with `begin` to a line with `end` (both included) replaced by `stub`
    at the begin line's indentation, or removed (stub None); as nbgrader's ClearSolutions and
    ClearHiddenTests do."""
    out, inside, found = [], False, False
    for line in text.split("\n"):
        if begin in line:
            if inside:
                raise CommandError(f"nested '{begin}' in a cell")
            inside = found = True
            indent = re.match(r"\s*", line).group(0)
            out += [indent + s for s in stub or ()]
        elif end in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise CommandError(f"'{begin}' without '{end}' in a cell")
    return "\n".join(out), found


def is_graded(nb: dict) -> bool:
    """Whether a notebook is in nbgrader's format (a cell with nbgrader's metadata)."""
    return any("nbgrader" in c.get("metadata", {}) for c in nb.get("cells", ()))


TEACHER_TAG = "teacher"       # a cell only the teacher's copy has: an exit question's answer sheet


def without_teacher_cells(nb: dict) -> dict:
    """The notebook without its cells tagged 'teacher' (nbconvert's TagRemovePreprocessor with
    remove_cell_tags={'teacher'} does the same)."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb.get("cells", [])
                   if TEACHER_TAG not in c.get("metadata", {}).get("tags", [])]
    return nb


def student_version(nb: dict) -> dict:
    """The notebook as `nbgrader generate_assignment` releases it to students, its cells tagged
    'teacher' removed first (the course's nbgrader_config.py in the teacher's guide) (its ClearSolutions,
    ClearHiddenTests, LockCells and ClearOutput steps, with nbgrader's default settings), without
    nbgrader: solution regions become `# YOUR CODE HERE` / `raise NotImplementedError()` (text:
    YOUR ANSWER HERE), hidden tests go, grade and read-only cells are locked, outputs are
    cleared."""
    nb = without_teacher_cells(nb)
    for cell in nb["cells"]:
        meta = cell.setdefault("metadata", {})
        grader = meta.get("nbgrader", {})
        solution, grade, locked = (bool(grader.get(k)) for k in ("solution", "grade", "locked"))
        stub = CODE_STUB if cell["cell_type"] == "code" else TEXT_STUB
        text, replaced = _replace_regions(_text(cell.get("source", "")), *SOLUTION, stub)
        if replaced and not solution:
            raise CommandError("a solution region in a cell not marked as a solution cell")
        if solution and not replaced:
            text = "\n".join(stub)
        if grade:
            text, _ = _replace_regions(text, *HIDDEN_TESTS, None)
        cell["source"] = text
        if solution:
            meta["deletable"] = False
        elif grade or locked:
            meta["deletable"] = meta["editable"] = False
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            for field in ("collapsed", "scrolled"):
                meta.pop(field, None)
    nb.get("metadata", {}).pop("celltoolbar", None)
    return nb


def lesson_files(teacher: bool = False) -> dict[str, bytes]:
    """File name → content of the copy (the student copies unless `teacher`)."""
    files = {}
    for path in lesson_sources():
        if not teacher and path.name == TEACHER_APP:
            continue                     # the class's answers are the teacher's to see
        data = path.read_bytes()
        if not teacher and path.suffix == ".ipynb":
            nb = json.loads(data)
            nb = student_version(nb) if is_graded(nb) else without_teacher_cells(nb)
            data = (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        files[path.name] = data
    return files


# --- copying without overwriting a learner's work -------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(dest: Path) -> dict[str, str]:
    """What was copied into dest last time (name → SHA-256); nothing if absent or unreadable."""
    try:
        files = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))["files"]
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def copy_lessons(dest: Path, teacher: bool = False) -> dict[str, list[str]]:
    """Copy the lessons and the guide into dest: a missing file is copied ("copied"), a file as it
    was copied last time is brought up to date ("updated"), an identical one left ("same"), and
    any other file of that name kept ("kept"). Returns the names under each of the four."""
    dest = Path(dest).expanduser()
    source = shipped("notebooks")
    if dest.exists() and not dest.is_dir():
        raise CommandError(f"{dest} is a file, not a folder")
    if dest.resolve() == source.resolve():
        raise CommandError(f"{dest} is where the lessons are shipped from; choose another folder")
    files = lesson_files(teacher)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        before = _read_manifest(dest)
        after, done = dict(before), {"copied": [], "updated": [], "same": [], "kept": []}
        for name, data in files.items():
            target = dest / name
            if not target.exists():
                _write(target, data)
                what = "copied"
            elif not target.is_file():
                what = "kept"
            else:
                old = target.read_bytes()
                if old == data:
                    what = "same"
                elif before.get(name) == _sha(old):        # as copied: no one changed it
                    _write(target, data)
                    what = "updated"
                else:
                    what = "kept"
            done[what].append(name)
            if what != "kept":
                after[name] = _sha(data)
        manifest = {"backpropviz": __version__, "copies": "teacher" if teacher else "student",
                    "files": after}
        _write(dest / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    except OSError as e:
        raise CommandError(f"could not copy the lessons into {dest}: {e}") from None
    return done


def report(dest: Path, done: dict[str, list[str]], teacher: bool, brief: bool = False) -> None:
    """Say what copy_lessons did (brief: one line, for lab and classroom)."""
    kind = "teacher's" if teacher else "student"
    new = len(done["copied"]) + len(done["updated"])
    if brief:
        parts = [f"{new} copied or updated" if new else "up to date"]
        if done["kept"]:
            parts.append(f"{len(done['kept'])} kept as changed there "
                         f"({', '.join(done['kept'])})")
        print(f"lessons in {dest} ({kind} copies): {'; '.join(parts)}")
        return
    for name in done["kept"]:
        print(f"kept {dest / name}: it differs from what backpropviz copied there (a learner's "
              f"work?); delete or rename it to get the shipped one")
    for name in done["updated"]:
        print(f"updated {dest / name} to the {kind} copy (it had not changed since it was copied)")
    n = len(done["copied"])
    if n:
        print(f"copied {n} file{'s' * (n != 1)} into {dest} ({kind} copies of the lessons"
              + (f", and the teacher's guide {GUIDE}" if GUIDE in done["copied"] else "") + ")")
    if not new and not done["kept"]:
        print(f"{dest} already has the {kind} copies of every lesson and the guide")
    if done["kept"] or new:
        start = dest / FIRST
        print(f"start with {start}; `backpropviz lab {dest}` opens it in JupyterLab")


# --- the commands ---------------------------------------------------------------------------------
def _need(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise CommandError(f"{what} is not installed here: pip install 'backpropviz[lab]' "
                           f"(JupyterLab, Voilà, graphviz-pure and the kernel)")


def _run(cmd: list[str]) -> int:
    """Become the server (POSIX: its signals and exit status are the command's), else wait."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(cmd[0], cmd)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# kernel messages leave the server at once (serverext.py: ~40 ms less on every other click)
NODELAY = "--ServerApp.jpserver_extensions=backpropviz.serverext=True"


def lab_command(dest: Path, extra: list[str] = ()) -> list[str]:
    """JupyterLab on dest with 00_start_here open, as ./dev lab runs it (--allow-root as root)."""
    dest = Path(dest).expanduser().resolve()
    root = ["--allow-root"] if _as_root() else []
    return [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={dest}", NODELAY, *root,
            *extra, str(dest / FIRST)]


def classroom_command(dest: Path, students: int, extra: list[str] = ()) -> list[str]:
    """Voilà on dest with the classroom set-up, as ./dev voila runs it: classroom/voila.json, and
    a pool of one pre-heated kernel of the classroom app per student (Voilà's --pool_size; any
    --pool_size in extra, which comes after it, wins)."""
    dest = Path(dest).expanduser().resolve()
    pool = [] if any(a.split("=", 1)[0] == "--pool_size" for a in extra) \
        else [f"--pool_size={students}"]          # Voilà refuses the option twice
    return [sys.executable, "-m", "voila", str(dest),
            f"--Voila.config_file_paths={shipped('classroom')}", *pool, *extra]


def warm_command(dest: Path) -> list[str]:
    """classroom/warm_layouts.py on the classroom app: its graphs laid out into the shared cache."""
    dest = Path(dest).expanduser().resolve()
    return [sys.executable, str(shipped("classroom") / "warm_layouts.py"), str(dest / APP)]


def students_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--students takes a whole number, not {text!r}") from None
    if not 1 <= n <= MAX_STUDENTS:
        raise argparse.ArgumentTypeError(
            f"--students must be from 1 to {MAX_STUDENTS} (each pre-heated kernel holds about "
            f"75 MB); past one machine, see the project's README, 'Teaching a class' (JupyterHub)")
    return n


def _split(args: list[str], ours: set[str], with_value: set[str]) -> tuple[list[str], list[str]]:
    """Our options and DIR (the first plain argument before any other option) from the arguments
    that go on to JupyterLab or Voilà (everything else, in order; all after `--`)."""
    mine, extra, have_dir, foreign = [], [], False, False
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if a == "--":
            extra += args[i + 1:]
            break
        if name in with_value:
            take = 1 if "=" in a else 2
            mine += args[i:i + take]
            i += take
            continue
        if a in ours:
            mine.append(a)
        elif not a.startswith("-") and not have_dir and not foreign:
            mine.append(a)
            have_dir = True
        else:
            foreign = True
            extra.append(a)
        i += 1
    return mine, extra


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(" ".join(p.split()), 79) for p in paragraphs)


KEEP = ("A file of DIR that differs from what was copied there (a learner's work) is never "
        "overwritten: it is kept and named; delete or rename it to get the shipped one.")
COPIES = _wrap(
    "The lessons come in two copies. The teacher's copies (--teacher) are the lessons as shipped: "
    "05_exercises with its solutions inside nbgrader's solution markers, the form nbgrader's "
    "`generate_assignment` takes as its source. The student copies (the default) have "
    "05_exercises as that command releases it: each solution replaced by "
    "`raise NotImplementedError()`, its test cells locked, its outputs cleared. Only the "
    "teacher's copies have the cells that give the exit questions' answers (tagged 'teacher'). "
    f"Both come with the teacher's guide, {GUIDE}.", KEEP)


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    fmt = argparse.RawDescriptionHelpFormatter
    top = argparse.ArgumentParser(
        prog="backpropviz", formatter_class=fmt,
        description=_wrap(
            "The backpropviz lessons (backpropagation, in the notation of the lecture notes' "
            "§7.4), for a teacher or a learner: copy them, open them in JupyterLab, or serve "
            "the classroom app with Voilà."),
        epilog="commands:\n"
               "  lessons DIR [--teacher]              copy the lessons and the teacher's guide\n"
               "  lab [DIR] [--teacher] [ARGS]         ... and open JupyterLab on them\n"
               "  classroom [DIR] [--students N] [ARGS]\n"
               "                                       ... and serve the classroom app (Voilà)\n"
               "                                       (--class CLASS_DIR: keep the class's answers)\n"
               "  teacher CLASS_DIR [ARGS]             the teacher's live view of the class\n"
               "  class open|list|close|forget CLASS_DIR   the classes of a class folder\n\n"
               + _wrap("`backpropviz COMMAND --help` says more. `lab` and `classroom` need the "
                       "[lab] extra: pip install 'backpropviz[lab]'."))
    top.add_argument("--version", action="version", version=f"backpropviz {__version__}")
    top.add_argument("command", nargs="?", metavar="COMMAND",
                     choices=["lessons", "lab", "classroom", "teacher", "class"],
                     help="lessons, lab, classroom, teacher or class")
    sub = {}
    sub["lessons"] = p = argparse.ArgumentParser(
        prog="backpropviz lessons", formatter_class=fmt,
        description=_wrap("Copy the lessons (00–08) and the teacher's guide into DIR."),
        epilog=COPIES)
    p.add_argument("dir", metavar="DIR", type=Path, help="the folder (made if missing)")
    p.add_argument("--teacher", action="store_true", help="the teacher's copies (see below)")

    sub["lab"] = p = argparse.ArgumentParser(
        prog="backpropviz lab", formatter_class=fmt,
        description=_wrap(
            "Copy the lessons into DIR where needed (as `backpropviz lessons DIR` does), then "
            f"open JupyterLab there, on {FIRST} (with --allow-root when run as root).",
            "Other arguments go to JupyterLab; give them after DIR, as --name=value (e.g. "
            "--no-browser --ServerApp.port=8899); everything after -- goes too."),
        epilog=COPIES)
    p.add_argument("dir", metavar="DIR", nargs="?", type=Path, default=Path(DEFAULT_LAB_DIR),
                   help=f"the lessons' folder (default: ./{DEFAULT_LAB_DIR})")
    p.add_argument("--teacher", action="store_true", help="the teacher's copies (see below)")

    sub["classroom"] = p = argparse.ArgumentParser(
        prog="backpropviz classroom", formatter_class=fmt,
        description=_wrap(
            "Copy the student copies of the lessons into DIR where needed, lay out the classroom "
            "app's graphs ahead (warm_layouts.py), then serve DIR with Voilà and the classroom "
            f"set-up (voila.json): the app is http://<machine>:8866/voila/render/{APP}, its "
            "code hidden, each student's page from a kernel that has already run it.",
            "Other arguments go to Voilà; give them after DIR, as --name=value (e.g. "
            "--Voila.ip=0.0.0.0 --no-browser --token=WORD, to serve the classroom's network; "
            "the students' link then ends in ?token=WORD); everything after -- goes too."),
        epilog=_wrap(
            "The class size sets the pool of pre-heated kernels, one per student: "
            "--students 30 keeps 30 ready (about 75 MB each; on 2 cores they take about half a "
            "minute to warm, so start the server a few minutes before the class). A student "
            "beyond the pool waits up to a minute for a kernel: count a few spare for reloads. "
            "The default, 1, suits one person reading the lessons. The project's README "
            "(section 'Teaching a class') has the measurements.",
            "DIR gets the student copies (see `backpropviz lessons --help`). " + KEEP))
    p.add_argument("dir", metavar="DIR", nargs="?", type=Path, default=Path(DEFAULT_CLASS_DIR),
                   help=f"the lessons' folder (default: ./{DEFAULT_CLASS_DIR})")
    p.add_argument("--students", type=students_count, default=1, metavar="N",
                   help=f"the class size: N pre-heated kernels (1 to {MAX_STUDENTS}; default 1)")
    p.add_argument("--class", dest="class_dir", type=Path, metavar="CLASS_DIR",
                   help="keep the class's predictions in CLASS_DIR (made if missing, with a "
                        "class open): the students join with its code, the teacher watches with "
                        "`backpropviz teacher CLASS_DIR`")

    sub["teacher"] = p = argparse.ArgumentParser(
        prog="backpropviz teacher", formatter_class=fmt,
        description=_wrap(
            "Serve the teacher's live view of a class (09_teacher) with Voilà, on its own port "
            f"({TEACHER_PORT}) and with its own token (printed), from the teacher's copies of "
            "the lessons. It shows, every 1.5 s, what the students of the class predicted.",
            "Other arguments go to Voilà (e.g. --port=8870 --token=WORD)."))
    p.add_argument("class_dir", metavar="CLASS_DIR", type=Path,
                   help="the class folder given to `backpropviz classroom --class`")
    p.add_argument("--code", help="the class to show (default: the open one)")
    p.add_argument("--lessons", type=Path, default=Path(DEFAULT_TEACHER_DIR), metavar="DIR",
                   help=f"the teacher's copies of the lessons (default: ./{DEFAULT_TEACHER_DIR})")

    sub["class"] = p = argparse.ArgumentParser(
        prog="backpropviz class", formatter_class=fmt,
        description=_wrap("A class folder's classes: open a new one (a new code), list them, "
                          "close them (they take no more answers), or forget answers older "
                          "than some days."))
    p.add_argument("action", choices=["open", "list", "close", "forget"])
    p.add_argument("dir", metavar="CLASS_DIR", type=Path)
    p.add_argument("codes", nargs="*", metavar="CODE", help="close: these classes (default: all)")
    p.add_argument("--days", type=float, default=float(RETENTION_DAYS),
                   help="forget: answers older than this many days (default 30)")
    return top, sub


# --- a class's live view (backpropviz/live) -------------------------------------------------------
def open_class(folder, create: bool = True) -> str:
    """The open class of the store in folder (made, with a new class, if there is none; without
    ``create``, a folder without a store is an error: a mistyped folder makes no new class)."""
    from .live.store import ClassStore, StoreError
    try:
        store = ClassStore(folder, create=create)
        store.forget_before(RETENTION_DAYS * 86400)       # the README's promise: 30 days
        open_now = [c["code"] for c in store.classes() if c["closed"] is None]
        code = open_now[-1] if open_now else store.open_class()
        store.close()
        return code
    except StoreError as e:
        raise CommandError(str(e)) from None


def class_command(ns) -> int:
    from .live.events import EventError
    from .live.store import ClassStore, StoreError
    try:
        if ns.action == "open":
            store = ClassStore(ns.dir, create=True)
            code = store.open_class()
            print(f"class {code} is open in {ns.dir}: give the students this code")
        elif ns.action == "list":
            store = ClassStore(ns.dir)
            for c in store.classes():
                state = "open" if c["closed"] is None else "closed"
                print(f"{c['code']}  {state:6}  {store.count(c['code'])} answers  opened "
                      f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(c['opened']))}")
        elif ns.action == "close":
            store = ClassStore(ns.dir)
            for code in ns.codes or [c["code"] for c in store.classes() if c["closed"] is None]:
                store.close_class(code)
                print(f"class {code.upper()} is closed")
        else:                                            # forget: the retention, by hand
            store = ClassStore(ns.dir)
            n = store.forget_before(ns.days * 86400)
            print(f"forgot {n} answers older than {ns.days:g} days")
        return 0
    except (StoreError, EventError) as e:
        print(f"backpropviz class: {e}", file=sys.stderr)
        return 2


def teacher_command(lessons: Path, args: list[str]) -> list[str]:
    """Voilà on the teacher's live view alone (its own server, port and token)."""
    return [sys.executable, "-m", "voila", str(Path(lessons).expanduser().resolve() / TEACHER_APP),
            "--no-browser", *args]


def teacher(ns, extra: list[str]) -> int:
    code = ns.code or open_class(ns.class_dir, create=False)
    report(ns.lessons, copy_lessons(ns.lessons, teacher=True), True, brief=True)
    os.environ["BPV_CLASS_DIR"] = str(Path(ns.class_dir).expanduser().resolve())
    os.environ["BPV_CLASS_CODE"] = code
    args = list(extra)
    token = next((a.split("=", 1)[1] for a in args if a.startswith("--token=")), None)
    if token is None:
        token = secrets.token_urlsafe(12)
        args.append(f"--token={token}")
    if not any(a.startswith("--port=") for a in args):
        args.append(f"--port={TEACHER_PORT}")
    port = next(a.split("=", 1)[1] for a in args if a.startswith("--port="))
    print(f"class {code}: your live view is http://localhost:{port}/?token={token} "
          f"(keep this link to yourself: it shows every student's answers)")
    return _run(teacher_command(ns.lessons, args))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    top, sub = _parsers()
    if not args or args[0] not in sub:
        top.parse_args(args)                 # --help, --version, or an unknown command: exits
        top.print_help()
        return 2
    command, rest = args[0], args[1:]
    if command == "lessons":
        ns, extra = sub[command].parse_args(rest), []
    else:
        ours = {"--teacher"} if command == "lab" else set()
        valued = {"classroom": {"--students", "--class"}, "teacher": {"--code", "--lessons"}}
        mine, extra = _split(rest, ours | {"-h", "--help"}, valued.get(command, set()))
        if command == "class":
            mine, extra = rest, []
        ns = sub[command].parse_args(mine)
    try:
        if command == "lessons":
            report(ns.dir, copy_lessons(ns.dir, ns.teacher), ns.teacher)
            return 0
        if command == "lab":
            _need("jupyterlab", "JupyterLab")
            report(ns.dir, copy_lessons(ns.dir, ns.teacher), ns.teacher, brief=True)
            return _run(lab_command(ns.dir, extra))
        if command == "class":
            return class_command(ns)
        _need("voila", "Voilà")
        if command == "teacher":
            return teacher(ns, extra)
        report(ns.dir, copy_lessons(ns.dir), False, brief=True)
        print(f"the classroom app: a pool of {ns.students} pre-heated kernel"
              f"{'s' * (ns.students != 1)} (--students {ns.students})")
        if ns.class_dir is not None:
            code = open_class(ns.class_dir)
            os.environ["BPV_CLASS_DIR"] = str(Path(ns.class_dir).expanduser().resolve())
            print(f"the class: code {code} (students type it in their Stepper's predict box); "
                  f"your live view: backpropviz teacher {ns.class_dir}")
        if subprocess.call(warm_command(ns.dir)) != 0:
            print("could not lay out the classroom's graphs ahead; continuing", file=sys.stderr)
        return _run(classroom_command(ns.dir, ns.students, extra))
    except CommandError as e:
        print(f"backpropviz {command}: {e}", file=sys.stderr)
        return 2
