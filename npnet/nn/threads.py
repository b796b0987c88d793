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
winning, the interval doubles up to `max_recheck`. A later one cannot see the core come back
(one slice after the other takes as long on a free core as on a busy one), and each trial
of the first costs a few slow steps while the core is still taken (cnn.yaml under load: 3
steps of 22-35 ms against 16-21 every 50 steps, ~3 % of the run). So with an `idle_cores`
clock (the seconds this process's cores sat idle, `npnet.nn.blas.idle_core_seconds`) the
first is tried again only once, over `probe` steps in a row, at least `free` cores' worth of
time went idle (a wrong choice on an idle machine, after a hiccup of the host, lasts ~`probe`
steps; each further trial the later setting wins doubles the window, for when the core is
idle yet side by side still loses, e.g. while the host runs another machine on it), or after
`max_recheck` steps; a jump in a later setting's step time is then no reason (running more
at once cannot help while no core is free). Without a clock, every `recheck` steps. A setting
whose fastest step in the trial takes more than `hopeless` times the best step seen gets no
further steps in it, so a trial under load costs a few slow steps at most, and one hiccup of
the host does not end a setting's steps.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence


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
        idle_cores: Callable[[], float | None] | None = None,
        probe: int = 10,
        free: float = 0.5,
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
        self.idle_cores, self.probe, self.free = idle_cores, probe, free
        self.since_trial = 0  # steps since the last trial ended
        self.later_wins = 0  # trials in a row won by a later setting
        # While a later setting is kept, the window being watched: the idle seconds and the
        # clock at its start, the seconds its steps took, and how many steps it has
        self.window: tuple[float, float, float, int] | None = None
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
            self.record_kept(seconds)

    def record_kept(self, seconds: float) -> None:
        self.recent.append(seconds)
        self.steps_left -= 1
        self.since_trial += 1
        if self.kept != self.candidates[0] and self.idle_cores is not None:
            self.watch_for_a_free_core(seconds)
            return
        jumped = len(self.recent) == self.recent.maxlen and (
            statistics.median(self.recent) > self.jump * self.baseline
        )
        if jumped:
            self.recheck = self.base_recheck
        if jumped or self.steps_left <= 0:
            self.start_trial()

    def watch_for_a_free_core(self, seconds: float) -> None:
        """A later setting is kept: try the first again as soon as, over `probe` steps in a
        row (doubled for each trial in a row a later setting won), the cores this process may
        use sat idle for `free` cores' worth of the time (or after `max_recheck` steps). A
        window that took much longer than its steps (a pause: an evaluation, the caller's own
        work) says nothing about them: it starts again."""
        if self.window is not None:
            idle, clock, stepped, steps = self.window
            self.window = idle, clock, stepped + seconds, steps + 1
            if steps + 1 < min(self.probe << max(self.later_wins - 1, 0), self.max_recheck):
                return
        now = self.read_idle_clock()
        if now is None:  # no clock any more: the `recheck` rule from the next step on
            return
        if self.window is None:  # the first step after the trial opens the first window
            self.window = (*now, 0.0, 0)
            return
        (idle, clock, stepped, _), (idle_now, clock_now) = self.window, now
        paused = clock_now - clock > 1.5 * stepped
        free = not paused and idle_now - idle >= self.free * (clock_now - clock)
        if free or self.since_trial >= self.max_recheck:
            self.start_trial()
        else:
            self.window = (idle_now, clock_now, 0.0, 0)

    def read_idle_clock(self) -> tuple[float, float] | None:
        """(idle seconds, wall clock) now; None, and no more clock (so every `recheck` steps
        from now on), if it stopped answering."""
        idle = self.idle_cores()
        if idle is None:
            self.idle_cores = None
            return None
        return idle, time.perf_counter()

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
        self.later_wins = 0 if fastest == self.candidates[0] else self.later_wins + 1
        self.current = self.kept = fastest
        self.baseline = medians[fastest]
        self.trials += 1
        self.steps_left = self.recheck
        self.since_trial = 0
        self.window = None
        self.in_trial = False
