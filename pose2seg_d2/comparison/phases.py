"""
The phases of a side-by-side run (tools/compare.py) on a wall clock: each phase logs what runs
and how long the run should still take, and the times go into results.json.
"""
import logging
import time
from contextlib import contextmanager

__all__ = ["PhaseClock", "format_duration"]

logger = logging.getLogger("pose2seg_d2")


def format_duration(seconds):
    """``"1 min 05 s"``, ``"42 s"``."""
    seconds = int(round(max(0.0, seconds)))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


class PhaseClock:
    """
    Times named phases against what they usually take.

    ``expected`` maps each phase planned for the run to its usual seconds (measured on the
    reference machine, README "Demo"); the phases that are not there are timed but not
    forecast. Before a phase, the log says which it is and the run's expected remaining time:
    the usual seconds of the phases not done yet, scaled by how fast this machine did the done
    ones (their measured over their usual time; 1 before any is done), within
    :attr:`SPEED_RANGE` (a phase can take no time at all, as the data where it is there already).

    Args:
        expected (dict[str, float]): phase name -> usual seconds, in the run's order.
        started_at (float or None): ``time.time()`` when the run began (e.g. before the set-up
            that ran before this process, as a phase "setup"); None: now.
    """

    SPEED_RANGE = (0.5, 3.0)

    def __init__(self, expected, started_at=None):
        self.expected = dict(expected)
        self.started_at = time.time() if started_at is None else float(started_at)
        self.seconds = {}  # phase -> measured seconds, in the order done

    def record(self, name, seconds):
        """Count ``seconds`` as phase ``name`` (e.g. the set-up before this process)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)

    def speed(self):
        """Measured over usual seconds of the forecast phases done so far (1 without any),
        clamped to :attr:`SPEED_RANGE`."""
        done = [n for n in self.seconds if n in self.expected and self.expected[n] > 0]
        usual = sum(self.expected[n] for n in done)
        low, high = self.SPEED_RANGE
        return min(max(sum(self.seconds[n] for n in done) / usual, low), high) if usual else 1.0

    def remaining(self, current=None):
        """Expected seconds still to run: ``current`` and every forecast phase not done."""
        left = [n for n in self.expected if n not in self.seconds or n == current]
        return self.speed() * sum(self.expected[n] for n in left)

    @contextmanager
    def phase(self, name, description):
        """Time the block as phase ``name``; log its start with the forecast, and its end."""
        usual = self.expected.get(name)
        forecast = f" (usually {format_duration(self.speed() * usual)})" if usual else ""
        logger.info(
            f"==> phase {name}: {description}{forecast}; about {format_duration(self.remaining(name))} left in all"
        )
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - start)
            logger.info(f"==> phase {name} done in {format_duration(self.seconds[name])}")

    def summary(self):
        """dict for results.json: ``total_seconds`` since ``started_at`` and ``phases`` (name -> s)."""
        return {
            "total_seconds": round(time.time() - self.started_at, 1),
            "phases": {n: round(s, 1) for n, s in self.seconds.items()},
        }
