"""The training worker's own time limit (Celery's need the prefork pool; it runs --pool solo)."""
import pytest

from workers.fine_tune import Deadline, TimeLimitExceeded


def test_a_fine_tune_deadline_stops_the_run_once_passed():
    now = [100.0]
    deadline = Deadline(30, clock=lambda: now[0])
    now[0] = 129.0
    deadline.check()  # still within the limit
    now[0] = 130.5
    with pytest.raises(TimeLimitExceeded, match="RECSYS_FINE_TUNE_TIME_LIMIT_S"):
        deadline.check()
