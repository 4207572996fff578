"""The processes' main coroutines run on uvloop, the loop the benchmarks measured them on."""

import asyncio

import uvloop

from roadwatch.cli.common import run


def test_a_process_runs_on_uvloop_and_gets_its_coroutines_result() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run(main()) == uvloop.Loop.__module__
