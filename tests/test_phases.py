"""The side-by-side run's phase clock: forecasts of the time left, and the times it records."""
import logging

import pytest

from pose2seg_d2.comparison.phases import PhaseClock, format_duration


def test_the_forecast_scales_the_phases_left_by_how_fast_the_done_ones_ran():
    clock = PhaseClock({"setup": 100, "train": 600, "evaluate": 300}, started_at=0.0)
    assert clock.speed() == 1.0 and clock.remaining() == 1000
    clock.record("setup", 150)  # this machine is 1.5x slower than the usual one
    assert clock.speed() == pytest.approx(1.5)
    assert clock.remaining() == pytest.approx(1.5 * 900)
    assert clock.remaining("train") == pytest.approx(1.5 * 900)  # the phase about to run counts
    clock.record("train", 300)  # then 2x faster: (150 + 300) / (100 + 600)
    assert clock.remaining() == pytest.approx(450 / 700 * 300)
    clock.record("unplanned", 50)  # timed, not forecast, not in the speed
    assert clock.speed() == pytest.approx(450 / 700)
    clock.record("evaluate", 0)  # a phase that had nothing to do: the speed stays in its range
    assert clock.speed() == pytest.approx(0.5) and clock.remaining() == 0
    summary = clock.summary()
    assert summary["phases"] == {"setup": 150, "train": 300, "unplanned": 50, "evaluate": 0}
    assert summary["total_seconds"] > 1e9  # time.time() since the epoch


def test_a_phase_logs_what_runs_and_the_time_left_then_records_itself(caplog):
    clock = PhaseClock({"data": 20, "train": 40})
    with caplog.at_level(logging.INFO, logger="pose2seg_d2"):
        with clock.phase("data", "reading the datasets"):
            pass
    assert "==> phase data: reading the datasets (usually 20 s); about 1 min 00 s left in all" in caplog.text
    assert "==> phase data done in 0 s" in caplog.text
    assert set(clock.seconds) == {"data"} and clock.seconds["data"] < 1
    with pytest.raises(RuntimeError), clock.phase("train", "a phase that fails"):
        raise RuntimeError("still timed")
    assert "train" in clock.seconds


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 60, 65, 3600)] == ["0 s", "42 s", "1 min 00 s", "1 min 05 s", "60 min 00 s"]
