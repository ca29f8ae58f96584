"""What several test files share: a call refused with a clear BackpropError, and a tall graph."""
from __future__ import annotations

import numpy as np
import pytest

import backpropviz as bpv


def refused(fn, *fragments, short: int | None = None) -> str:
    """fn() raises a BackpropError whose message holds every fragment (and, given ``short``, is at
    most that many characters); its message."""
    with pytest.raises(bpv.BackpropError) as info:
        fn()
    msg = str(info.value)
    for f in fragments:
        assert f in msg, (f, msg)
    if short is not None:
        assert len(msg) <= short, (len(msg), msg[:200])
    return msg


def chain(n: int):
    """A tall graph: n scalar operations one after the other (4n + 3 nodes)."""
    def f(z):
        for i in range(n):
            z = (z * 1.01).sin() if i % 2 else z + 0.1
        return z.sum()
    return bpv.trace(f, np.array([0.3, -0.2]))


def nbgrader_course(tmp_path):
    """A course with the teacher's guide's configuration (classroom/nbgrader_config.py) and lesson
    05 as assignment ps1; returns (course, run) where run(*args) runs the nbgrader CLI there,
    reading only that configuration (no config, data or runtime directory of the user's)."""
    import os
    import shutil
    import subprocess
    import sys
    import textwrap
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    course, home = tmp_path / "course", tmp_path / "home"
    (course / "source" / "ps1").mkdir(parents=True)
    home.mkdir()
    (course / "nbgrader_config.py").write_text(
        (root / "classroom" / "nbgrader_config.py").read_text() + textwrap.dedent(f"""
        c.CourseDirectory.course_id = "backpropviz"
        c.CourseDirectory.root = {str(course)!r}
        c.CourseDirectory.db_url = {f"sqlite:///{course / 'gradebook.db'}"!r}
    """))
    shutil.copy(root / "notebooks" / "05_exercises.ipynb", course / "source" / "ps1")
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython"), "JUPYTER_CONFIG_PATH": str(home / "config"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("JUPYTER_PATH", None)

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done
    return course, run
