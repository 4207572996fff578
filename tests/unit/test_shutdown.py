"""A process stops on SIGTERM within its grace, whatever it was waiting for: each case runs
in a process of its own, which a real signal stops and which may exit at once."""

import signal
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import asyncio, logging, sys, time
    from roadwatch.cli.common import run
    from roadwatch.shutdown import stop_on_signals

    async def wait_forever() -> None:
        await asyncio.Event().wait()

    async def main(how: str, grace: float | None) -> None:
        stop = stop_on_signals(grace=grace)
        print("ready", flush=True)
        await stop.wait()
        if how == "hangs":
            await asyncio.create_task(wait_forever(), name="the stuck step")
        elif how == "blocks":
            time.sleep(60)
        print("finished", flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    grace = None if sys.argv[2] == "none" else float(sys.argv[2])
    run(main(sys.argv[1], grace))  # on uvloop, as every process runs
    """
)


def _stopped(how: str, grace: str, *, signals: int = 1) -> tuple[int, str, str, float]:
    """The exit code, output and error output of the program after `signals` SIGTERMs, and
    the seconds from the first to its exit."""
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, how, grace],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    logged = []
    for _ in range(signals - 1):
        logged += _signalled(process, until="stopping on SIGTERM")
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, out, "".join(logged) + err, time.monotonic() - started


def _signalled(process: "subprocess.Popen[str]", *, until: str) -> list[str]:
    """SIGTERM, then the lines of its error output up to the one saying `until`: the
    signal has been handled."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    lines: list[str] = []
    while not lines or until not in lines[-1]:
        line = process.stderr.readline()
        assert line, f"ended before saying {until!r}: {''.join(lines)}"
        lines.append(line)
    return lines


def test_a_process_that_finishes_its_work_exits_0_saying_why_it_stopped() -> None:
    code, out, err, _ = _stopped("finishes", "10")
    assert (code, out) == (0, "finished\n"), err
    assert "stopping on SIGTERM: finishing the work under way" in err


def test_a_step_that_never_ends_is_named_and_the_process_exits_1_after_its_grace() -> None:
    code, out, err, took = _stopped("hangs", "1")
    assert code == 1, err
    assert "finished" not in out
    assert "stopped unfinished, 1 s after SIGTERM; still waiting:" in err
    assert "the stuck step in wait_forever:" in err, err
    assert took < 30


def test_a_second_signal_ends_the_process_at_once() -> None:
    code, _, err, took = _stopped("hangs", "60", signals=2)
    assert code == 1, err
    assert "stopped unfinished, a second SIGTERM" in err
    assert took < 30


def test_an_event_loop_blocked_in_a_call_is_ended_by_a_thread_after_its_grace() -> None:
    code, out, err, took = _stopped("blocks", "1")
    assert code == 1, err
    assert "finished" not in out
    # faulthandler's dump of every thread's stack, the loop's stuck in the call
    assert "Timeout (0:00:06)!" in err, err
    assert "in main" in err, err
    assert took < 30


def test_without_a_grace_further_signals_are_only_logged() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "hangs", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    try:
        _signalled(process, until="stopping on SIGTERM")
        _signalled(process, until="already stopping; SIGTERM ignored")
        assert process.poll() is None
    finally:
        process.kill()
        process.communicate()
