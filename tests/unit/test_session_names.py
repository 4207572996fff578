"""A test session removes only what it named: the cleanup's rule for what is its own."""

from tests.helpers.servers import SESSION_MARK, made_by_this_session, unique


def test_names_made_here_are_this_sessions_as_databases_and_as_topics() -> None:
    database = unique("test")
    topic = unique("test.topic").replace("_", ".")

    assert made_by_this_session(database)
    assert made_by_this_session(topic)


def test_another_runs_names_are_not_even_when_they_hold_the_mark() -> None:
    other_mark = "0" * 6 if SESSION_MARK != "0" * 6 else "1" * 6
    # Another run's name whose random part happens to contain this session's mark.
    lookalike = f"test_{other_mark}{SESSION_MARK}abcd"

    assert not made_by_this_session(lookalike)
    assert not made_by_this_session(f"test_{other_mark}0123456789")
    assert not made_by_this_session("intellisite.detections")
