"""Choosing, while training runs, the fastest of a few interchangeable ways to run a step.

    chooser = FastestChoice([2, 1])     # e.g. how many slices of a batch run at once
    setting = chooser.current           # run the step with it...
    chooser.record(seconds)             # ...and say how long it took

Only settings that give the same numbers may be offered (for `train.threads: auto`, how many
of a batch's slices run at once; see npnet.nn.parallel): the choice then changes how long a
run takes, never what it computes, so a run needs no record of it and resumes bit for bit.

Policy: a trial times each setting for `samples` steps in a row, the kept one first, and keeps
the one with the lowest median step. In a row, not taking turns: a setting's first step after
another's is slower than its next (cnn.yaml: two slices side by side took 11.7-13.6 ms a step
right after one slice after the other, 7.3-9.6 ms after themselves; the idle core had halted
and been lent to the host meanwhile), and the median drops that one step. The kept setting
is tried again against the others after `recheck` steps, and at once when its median step
over the last few jumps to `jump` times its trial median: another process took a core. While
the first candidate (the one that uses the most of the machine, e.g. 2 slices at once) keeps
winning, the interval doubles up to `max_recheck`; a later one is re-checked every `recheck`
steps, because it cannot see the core come back (one slice after the other takes as long on a
free core as on a busy one): only trying the first again tells. A setting whose fastest step
in the trial takes more than `hopeless` times the best step seen gets no further steps in it,
so a trial under load costs a few slow steps at most, and one hiccup of the host does not end
a setting's steps.
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
        """Time every candidate again, the kept one first, `samples` steps each in a row."""
        order = [self.kept] + [c for c in self.candidates if c != self.kept]
        self.in_trial = len(order) > 1
        self.schedule = deque(c for c in order for _ in range(self.samples))
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
        if min(self.times[self.current]) > self.hopeless * best:  # no more steps in this trial
            self.schedule = deque(c for c in self.schedule if c != self.current)
        if self.schedule:
            self.current = self.schedule.popleft()
            return
        medians = {c: statistics.median(t) for c, t in self.times.items() if t}
        fastest = min(medians, key=medians.get)
        if self.trials:  # recheck less often while the first setting keeps winning
            again = fastest == self.kept == self.candidates[0]
            self.recheck = min(2 * self.recheck, self.max_recheck) if again else self.base_recheck
        self.current = self.kept = fastest
        self.baseline = medians[fastest]
        self.trials += 1
        self.steps_left = self.recheck
        self.in_trial = False
