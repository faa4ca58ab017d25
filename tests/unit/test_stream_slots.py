"""Each user's open progress streams (api.backend.StreamSlots, api.routes_stream.SlotStream): a place is given
back however its stream ends, once, and only then does a refused user get one again."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import MutableMapping
from typing import Any

import pytest

from api.backend import StreamSlots
from api.routes_stream import SlotStream


async def _events(forever: bool = False):
    yield "event: status\ndata: {}\n\n"
    while forever:
        await asyncio.sleep(3600)
        yield ": still here\n\n"


def _stream(slots: StreamSlots, user: str, forever: bool = False) -> SlotStream:
    assert slots.take(user)
    return SlotStream(slots.give_back, user, _events(forever), media_type="text/event-stream")


def test_a_user_past_the_limit_is_refused_and_others_are_not():
    slots = StreamSlots(limit=2)
    assert slots.take("ann") and slots.take("ann") and not slots.take("ann")
    assert slots.take("bob")
    slots.give_back("ann")
    assert slots.take("ann") and not slots.take("ann")


async def _serve(stream: SlotStream, disconnect_at_once: bool) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict:
        if not disconnect_at_once:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await stream({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
    return sent


@pytest.mark.parametrize("disconnect_at_once", [False, True], ids=["sent in full", "client gone"])
def test_a_served_stream_gives_its_place_back_once(disconnect_at_once):
    slots = StreamSlots(limit=1)
    stream = _stream(slots, "ann")
    assert not slots.take("ann")
    asyncio.run(_serve(stream, disconnect_at_once))
    assert slots.open == {}
    stream.release()  # a second release (the finaliser, later) frees nothing more
    assert slots.open == {}


def test_a_stream_never_served_gives_its_place_back_when_dropped():
    slots = StreamSlots(limit=1)
    stream = _stream(slots, "ann")
    del stream
    gc.collect()
    assert slots.open == {} and slots.take("ann")


def test_a_cancelled_stream_gives_its_place_back():
    slots = StreamSlots(limit=1)
    stream = _stream(slots, "ann", forever=True)

    async def cancelled() -> None:
        task = asyncio.ensure_future(_serve(stream, disconnect_at_once=False))
        await asyncio.sleep(0.05)
        assert not task.done() and not slots.take("ann")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert slots.open == {}
