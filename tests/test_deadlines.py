"""Deadlines: one timer bounds many blocks, as `asyncio.timeout` bounds one."""

from __future__ import annotations

import asyncio

import pytest

from viewstats.ingest.collector.deadlines import Deadlines


async def _block(deadlines: Deadlines, waits: asyncio.Future[None]) -> str:
    with deadlines.bound():
        await waits
    await asyncio.sleep(0.02)  # a cancellation of ours must not land after the block
    return "done"


def test_only_the_blocks_that_outlive_their_deadline_time_out() -> None:
    async def scenario() -> list[object]:
        deadlines = Deadlines(0.05)
        loop = asyncio.get_running_loop()
        gates = [loop.create_future() for _ in range(6)]
        blocks = [asyncio.create_task(_block(deadlines, gate)) for gate in gates]
        await asyncio.sleep(0)
        for gate in gates[::2]:  # these end in time
            gate.set_result(None)
        return await asyncio.gather(*blocks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[::2] == ["done"] * 3
    assert all(isinstance(result, TimeoutError) for result in results[1::2])


def test_blocks_begun_later_get_deadlines_of_their_own() -> None:
    async def scenario() -> tuple[str, bool]:
        deadlines = Deadlines(0.05)
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        first = asyncio.create_task(_block(deadlines, never))
        await asyncio.sleep(0.04)
        later = asyncio.get_running_loop().create_future()
        second = asyncio.create_task(_block(deadlines, later))
        with pytest.raises(TimeoutError):
            await first
        later.set_result(None)  # past the first one's deadline, before its own
        return await second, second.cancelling() == 0

    assert asyncio.run(scenario()) == ("done", True)


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(10)
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        block = asyncio.create_task(_block(deadlines, never))
        await asyncio.sleep(0)
        block.cancel()
        with pytest.raises(asyncio.CancelledError):
            await block
        deadlines.close()

    asyncio.run(scenario())
