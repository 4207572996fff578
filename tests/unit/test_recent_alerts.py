"""The window of recent alerts that resumes are served from."""

from roadwatch.api.recent_alerts import Gap, Kept, RecentAlerts


def kept(partition: int, offset: int, size: int = 10) -> Kept:
    return Kept(partition, offset, "x" * size, frozenset())


def test_a_resume_gets_what_came_after_its_cursor_and_before_the_live_position() -> None:
    window = RecentAlerts(most=100, most_bytes=10_000)
    for partition in (0, 1):
        window.start_at(partition, 0)
    for offset in range(5):
        window.add(kept(0, offset))
        window.add(kept(1, offset))

    alerts, gaps = window.since({0: 2, 1: 4}, until={0: 4, 1: 5})

    assert [(a.partition, a.offset) for a in alerts] == [(0, 2), (0, 3), (1, 4)]
    assert gaps == []


def test_what_the_window_no_longer_holds_is_a_gap_and_the_rest_follows() -> None:
    window = RecentAlerts(most=3, most_bytes=10_000)
    window.start_at(0, 0)
    for offset in range(10):
        window.add(kept(0, offset))

    alerts, gaps = window.since({0: 2}, until={0: 10})

    assert gaps == [Gap(0, missed_from=2, resumed_at=7)]
    assert [a.offset for a in alerts] == [7, 8, 9]
    assert len(window) == 3


def test_the_window_holds_no_more_bytes_than_it_may() -> None:
    window = RecentAlerts(most=1000, most_bytes=100)
    window.start_at(0, 0)
    for offset in range(50):
        window.add(kept(0, offset, size=30))

    assert len(window) == 3
    _alerts, gaps = window.since({0: 0}, until={0: 50})
    assert gaps == [Gap(0, missed_from=0, resumed_at=47)]


def test_a_window_started_late_reports_what_came_before_it_as_a_gap() -> None:
    window = RecentAlerts(most=100, most_bytes=10_000)
    window.start_at(0, 40)
    window.add(kept(0, 41))

    alerts, gaps = window.since({0: 10}, until={0: 42})

    assert gaps == [Gap(0, missed_from=10, resumed_at=40)]
    assert [a.offset for a in alerts] == [41]
