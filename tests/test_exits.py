"""The lessons' exit questions: a student's copy shows the questions and never their answers; each
question knows its answer and gives a hint of its own to each typical wrong answer."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import backpropviz as bpv
from backpropviz import cli
from backpropviz.core.errors import BackpropError
from backpropviz.teach.exits import LESSONS, Quiz
from backpropviz.teach.quiz import Question


def _trace00():
    net = bpv.Sequential([bpv.MM(np.array([[0.1, 0.2], [0.3, 0.4]]), np.zeros(2)), bpv.ReLU(),
                          bpv.MM(np.array([[0.5, -0.5]]), np.zeros(1)), bpv.Sigmoid()],
                         loss=bpv.SquaredLoss())
    return net.backprop(np.array([1.0, 2.0]), np.array([1.0]))


def quizzes() -> dict[str, Quiz]:
    return {name: bpv.exit_questions(name, _trace00() if name.startswith("00") else None)
            for name in LESSONS}


@pytest.mark.parametrize("name", list(LESSONS))
def test_each_question_takes_its_answer_and_names_each_typical_slip(name):
    quiz = quizzes()[name]
    assert len(quiz) == 3 or name.startswith("00")
    for q in quiz:
        ok, said = q.check(q.typed_answer)
        assert ok and said.startswith("Right"), (q.prompt, said)
        assert q.wrong, f"{q.prompt!r} has no typical wrong answer"
        hints = set()
        for typed, hint in q.wrong:
            ok, said = q.check(typed)
            assert not ok and said.endswith(hint), (typed, said)
            hints.add(hint)
        # a wrong answer no hint knows gets the generic reply, not one of the targeted hints
        other = q.choices[-1] if q.choices and q.choices[-1] != q.answer else "[123456789]"
        if not any(typed == other for typed, _ in q.wrong):
            assert not any(h in q.check(other)[1] for h in hints)


def test_the_notes_printed_algorithm_3_line_gets_its_slip_named():
    ok, said = bpv.exit_questions("04").questions[0].check("∂J/∂z[k]")
    assert not ok and "slip" in said and "(7.79)" in said


def test_numbers_are_shown_as_a_learner_writes_them():
    said = bpv.exit_questions("07_theorem")[1].check("180000")[1]
    assert said.startswith("Right: 180000.") and "e+" not in said


def test_exit_questions_refuse_what_they_cannot_ask():
    with pytest.raises(BackpropError, match="no lesson"):
        bpv.exit_questions("06")
    with pytest.raises(BackpropError, match="its trace"):
        bpv.exit_questions("00")
    with pytest.raises(BackpropError, match="takes no trace"):
        bpv.exit_questions("01", _trace00())
    with pytest.raises(BackpropError, match="is right"):
        Question("q", 2.0, wrong={"2": "no"})
    with pytest.raises(BackpropError, match="not an answer"):
        Question("q", "a", choices=["a", "b"], wrong={"c": "no"})
    with pytest.raises(BackpropError, match="wrong maps"):
        Question("q", 2.0, wrong={"3": 4})


# --- the student's copy and the teacher's -----------------------------------------------------------


def _shown(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append("".join(o.get("text", "")))
        for value in o.get("data", {}).values():
            out.append(value if isinstance(value, str) else "".join(value)
                       if isinstance(value, list) else "")
    return "\n".join(out)


@pytest.mark.parametrize("name", [n + ".ipynb" for n in LESSONS])
def test_a_students_copy_has_no_answer_in_its_source_or_outputs(name):
    student = json.loads(cli.lesson_files()[name])
    teacher = json.loads(cli.lesson_files(teacher=True)[name])
    quiz = quizzes()[name[:-6]]
    for cell in student["cells"]:
        source = cli._text(cell["source"])
        assert "teacher" not in cell["metadata"].get("tags", [])
        assert not re.search(r"\bq\d?\.check\(|\.key\(|\banswer=|\bwhy=", source), \
            (name, source[:200])
        for q in quiz:          # no reply of a question's check is printed in a student's copy
            right = q.check(q.typed_answer)[1]
            for text in [right, q.why] + [h for _, h in q.wrong]:
                assert text not in source and text not in _shown(cell)
    # ... and the teacher's copy has the answer sheet, with every answer checked right
    sheet = [_shown(c) for c in teacher["cells"] if "teacher" in c["metadata"].get("tags", [])]
    assert len(sheet) == 1 and sheet[0].count("✔") == len(quiz) and "✔ Right" in sheet[0]
    for q in quiz:
        assert q.why in sheet[0]
    # the student's copy is the teacher's without that cell (05: and as nbgrader releases it)
    if name != "05_exercises.ipynb":
        assert student["cells"] == [c for c in teacher["cells"]
                                    if "teacher" not in c["metadata"].get("tags", [])]
