"""The one progress bar: drawn only on a terminal and not when quiet, erased at the end, and its rate and ETA
are this run's (a resumed job's earlier work fills the bar but not the rate)."""

from __future__ import annotations

import io

import pytest

from irv2.progress import ProgressBar, byte_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "quiet", "drawn"), [(Terminal(), False, True), (Terminal(), True, False),
                                                        (io.StringIO(), False, False)])  # fmt: skip
def test_drawn_only_for_a_person_watching(stream, quiet, drawn):
    with ProgressBar(3, desc="classify", quiet=quiet, stream=stream) as bar:
        for _ in range(3):
            bar.update()
        bar.refresh()
        assert ("3/3" in stream.getvalue()) is drawn
    assert stream.getvalue().endswith("\r") is drawn  # erased: what follows starts on a clean line


def test_rate_and_eta_are_this_runs_and_failures_are_counted():
    stream = Terminal()
    # A resumed job: 600 of 1000 done before this run; 50 more in 10 s is 5/s, so the 350 left take 70 s.
    bar = ProgressBar(1000, desc="classify", initial=600, stream=stream)
    bar.start_t -= 10.0
    bar.update(50, failed=2)
    bar.update(0, failed=1)
    bar.refresh()
    line = stream.getvalue().rsplit("\r", 1)[-1]
    assert "650/1000" in line and "00:10<01:10" in line and "5.00 images/s" in line, line
    assert "3 failed" in line and bar.failed == 3
    bar.close()


def test_bytes_are_scaled():
    stream = io.StringIO()  # not a terminal: show=True draws anyway, as a caller that asked for a bar wants
    with byte_bar(220_000_000, desc="weights.tar.gz", initial=2_000_000, show=True, stream=stream) as bar:
        bar.update(10_300_000)
        bar.refresh()
        assert "12.3M/220M" in stream.getvalue().rsplit("\r", 1)[-1]
