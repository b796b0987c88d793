"""Choosing, while training runs, the fastest of a few interchangeable ways to run a step.

    chooser = FastestChoice([2, 1])     # e.g. how many slices of a batch run at once
    setting = chooser.current           # run the step with it...
    chooser.record(seconds)             # ...and say how long it took

Only settings that give the same numbers may be offered (for `train.threads: auto`, how many
of a batch's slices run at once; see npnet.nn.parallel): the choice then changes how long a
run takes, never what it computes, so a run needs no record of it and resumes bit for bit.

Policy: a trial times each setting for `samples` steps, taking turns, and keeps the one with
the lowest median step. The kept setting is tried again against the others after `recheck`
steps, an interval that doubles (up to `max_recheck`) each time the trial keeps the same
setting, and at once when its median step over the last few jumps to `jump` times its trial
median: another process took a core, or gave one back. A setting whose step takes more than
`hopeless` times the best step seen in the trial gets no further turns in it, so a trial
under load costs a few slow steps at most.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Hashable, Sequence


class FastestChoice:
    """The fastest of `candidates` now, from the step times `record` is given."""

    def __init__(
        self,
        candidates: Sequence[Hashable],
        samples: int = 3,
        recheck: int = 50,
        max_recheck: int = 1600,
        jump: float = 1.5,
        hopeless: float = 3.0,
        warmup: int = 1,
    ) -> None:
        if not candidates:
            raise ValueError("FastestChoice needs at least one candidate")
        self.candidates = list(dict.fromkeys(candidates))
        self.samples, self.jump, self.hopeless = samples, jump, hopeless
        self.base_recheck, self.max_recheck = recheck, max_recheck
        self.recheck = recheck
        self.current = self.kept = self.candidates[0]
        self.warmup = warmup  # the first steps fault in pages and start threads: not timed
        self.used: Counter = Counter()  # steps run with each setting
        self.trials = 0  # trials finished
        self.recent: deque[float] = deque(maxlen=5)
        self.baseline = float("inf")
        self.steps_left = 0
        self.start_trial()

    def start_trial(self) -> None:
        """Time every candidate again, the kept one first, taking turns."""
        order = [self.kept] + [c for c in self.candidates if c != self.kept]
        self.in_trial = len(order) > 1
        self.schedule = deque(order * self.samples)
        self.times: dict[Hashable, list[float]] = {c: [] for c in order}
        self.recent.clear()
        self.current = self.schedule.popleft()

    def record(self, seconds: float) -> None:
        """Take the time of one step run with `current`; `current` may change after it."""
        self.used[self.current] += 1
        if self.warmup > 0:
            self.warmup -= 1
        elif self.in_trial:
            self.record_trial(seconds)
        elif len(self.candidates) > 1:
            self.recent.append(seconds)
            self.steps_left -= 1
            jumped = len(self.recent) == self.recent.maxlen and (
                statistics.median(self.recent) > self.jump * self.baseline
            )
            if jumped:
                self.recheck = self.base_recheck
            if jumped or self.steps_left <= 0:
                self.start_trial()

    def record_trial(self, seconds: float) -> None:
        self.times[self.current].append(seconds)
        best = min(min(t) for t in self.times.values() if t)
        if seconds > self.hopeless * best:  # no more turns for this one in this trial
            self.schedule = deque(c for c in self.schedule if c != self.current)
        if self.schedule:
            self.current = self.schedule.popleft()
            return
        medians = {c: statistics.median(t) for c, t in self.times.items() if t}
        fastest = min(medians, key=medians.get)
        if self.trials:  # recheck less often while the same setting keeps winning
            same = fastest == self.kept
            self.recheck = min(2 * self.recheck, self.max_recheck) if same else self.base_recheck
        self.current = self.kept = fastest
        self.baseline = medians[fastest]
        self.trials += 1
        self.steps_left = self.recheck
        self.in_trial = False
