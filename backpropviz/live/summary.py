"""What the teacher's view shows, computed from a class's events (plain data in, plain data out).

Per step of the pass the class works on: how many students answered, the share right first time,
the slips the hints recognised with their counts, a histogram of the numbers typed, the students
still stuck; and the step the class is on (where most students' latest answer is).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from ..display.text import fnum

BINS = 8


@dataclass
class StepSummary:
    step: int
    writes: str
    kind: str
    tag: str
    answered: int = 0                 # students with an attempt here
    right_first: int = 0              # ... whose first attempt was right
    right_after_hint: int = 0
    revealed: int = 0
    stuck: int = 0                    # ... with wrong attempts and neither right nor revealed
    slips: list = field(default_factory=list)        # [(slip, attempts)], most first
    histogram: list = field(default_factory=list)    # [(label, count, holds the right answer)]
    right: float | None = None        # the right answer's first number, when known

    @property
    def share_right_first(self) -> float | None:
        return self.right_first / self.answered if self.answered else None


@dataclass
class ClassSummary:
    students: int
    events: int
    current: int | None               # the step the class is on
    steps: list[StepSummary]          # in step order
    left_out: int = 0                 # events of another network or view than the class's
    fingerprint: str | None = None
    view: str | None = None

    def step(self, k: int) -> StepSummary | None:
        return next((s for s in self.steps if s.step == k), None)


def histogram(values: list[float], right: float | None, bins: int = BINS) -> list:
    """[(label, count, holds the right answer)]: one bar per value when there are few distinct
    values (as fnum writes them, 4 significant digits), else ``bins`` equal bins between the least
    and the greatest (computed in halves, so ±1e308 do not overflow)."""
    values = [float(v) for v in values if math.isfinite(v)]
    if not values:
        return []
    keyed = Counter(fnum(v) for v in values)
    if len(keyed) <= bins:
        r = None if right is None else fnum(right)
        return [(v, n, v == r) for v, n in sorted(keyed.items(), key=lambda kv: float(kv[0]))]
    lo, hi = min(values), max(values)
    half = hi / 2 - lo / 2                       # > 0: more than `bins` distinct values
    at = lambda v: min(bins - 1, max(0, int((v / 2 - lo / 2) / half * bins)))
    counts = [0] * bins
    for v in values:
        counts[at(v)] += 1
    mark = None if right is None or not math.isfinite(right) or not lo <= right <= hi \
        else at(right)
    edge = lambda i: lo * (1 - i / bins) + hi * (i / bins)      # finite for any finite lo, hi
    return [(f"{fnum(edge(i))} to {fnum(edge(i + 1))}", n, i == mark)
            for i, n in enumerate(counts)]


def summarize(events: list[dict]) -> ClassSummary:
    """The class's summary: the network (fingerprint) and view most events are about; events of
    others are counted in ``left_out``."""
    if not events:
        return ClassSummary(0, 0, None, [])
    # the network and view most students answer about (one student's many events count once)
    answered = {(e["fingerprint"], e["view"], e["student"]) for e in events}
    (fp, view), _ = Counter((f, v) for f, v, _ in sorted(answered)).most_common(1)[0]
    mine = [e for e in events if e["fingerprint"] == fp and e["view"] == view]
    by_step: dict[int, list[dict]] = {}
    for e in mine:
        by_step.setdefault(e["step"], []).append(e)
    latest = {}
    for e in mine:                                  # events come in the order they arrived
        latest[e["student"]] = e["step"]
    steps = []
    for k in sorted(by_step):
        evs = by_step[k]
        common = lambda key: Counter(e[key] for e in evs).most_common(1)[0][0]
        s = StepSummary(k, common("writes"), common("kind"), common("tag"))
        per_student: dict[str, list[dict]] = {}
        for e in evs:
            per_student.setdefault(e["student"], []).append(e)
        for tries in per_student.values():
            outcomes = [e["outcome"] for e in tries]
            s.answered += 1
            s.right_first += outcomes[0] == "right first time"
            s.right_after_hint += "right after a hint" in outcomes
            s.revealed += "revealed" in outcomes
            s.stuck += "wrong" in outcomes and not ({"right first time", "right after a hint",
                                                     "revealed"} & set(outcomes))
        s.slips = Counter(e["slip"] or "other" for e in evs
                          if e["outcome"] == "wrong").most_common()
        rights = [e["answer"] for e in evs if e["outcome"] != "wrong" and e["answer"]]
        s.right = rights[0][0] if rights else None
        # answers of the right answer's size only: a wrong shape's first entry means nothing here
        typed = [e["answer"][0] for e in evs if e["answer"] and
                 (not rights or len(e["answer"]) == len(rights[0]))]
        s.histogram = histogram(typed, s.right)
        steps.append(s)
    at = Counter(latest.values()).most_common()
    current = max(k for k, n in at if n == at[0][1]) if at else None
    return ClassSummary(len({e["student"] for e in mine}), len(events), current, steps,
                        len(events) - len(mine), fp, view)


__all__ = ["ClassSummary", "StepSummary", "histogram", "summarize"]
