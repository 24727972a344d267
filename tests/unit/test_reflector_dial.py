"""The reflector's batch of TCP dial-backs on loopback: outcomes in request order, the dial slots, the reset
after the answer, and a cancelled batch that gives everything back."""

from __future__ import annotations

import asyncio
import socket

import pytest

from natlink.probe.reflector_dial import TcpBatch


def _listener() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, sock.getsockname()[1]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound, never listening, now free: a connect is refused
    return port


async def _all_free(slots: asyncio.Semaphore, n: int) -> bool:
    """True when all n slots can be taken at once (then they are given back)."""
    for _ in range(n):
        await asyncio.wait_for(slots.acquire(), 0.5)
    taken_all = slots.locked()
    for _ in range(n):
        slots.release()
    return taken_all


def test_a_batch_reports_each_port_in_order_and_resets_after_close():
    greeter, greet_port = _listener()
    silent, silent_port = _listener()
    refused = _closed_port()

    async def run() -> tuple[list, bool, type]:
        slots = asyncio.Semaphore(1)  # one slot: the dials run one after another
        batch = TcpBatch("127.0.0.1", [(greet_port, 16), (refused, 0), (silent_port, 0)], 2.0, slots)
        task = asyncio.ensure_future(batch.run())
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(None, lambda: greeter.accept()[0])
        conn.sendall(b"NATLINK-PROBE 42")
        outcomes = await task
        free = await _all_free(slots, 1)
        quiet = await loop.run_in_executor(None, lambda: silent.accept()[0])
        batch.close()
        quiet.settimeout(2.0)
        try:
            quiet.recv(1)
            ended: type = type(None)
        except OSError as exc:
            ended = type(exc)
        conn.close()
        quiet.close()
        return outcomes, free, ended

    try:
        outcomes, free, ended = asyncio.run(run())
    finally:
        greeter.close()
        silent.close()
    assert [o.outcome for o in outcomes] == ["open", "refused", "open"]
    assert outcomes[0].data == b"NATLINK-PROBE 42" and outcomes[2].data == b""
    assert free  # every dial gave its slot back
    assert ended is ConnectionResetError  # SO_LINGER 0: the dial-back ends with a reset, not a FIN


def test_a_silent_peer_yields_open_with_nothing_when_the_read_window_closes():
    silent, port = _listener()

    async def run():
        batch = TcpBatch("127.0.0.1", [(port, 32)], 0.3)
        try:
            return await batch.run()
        finally:
            batch.close()

    try:
        [out] = asyncio.run(run())
    finally:
        silent.close()
    assert (out.outcome, out.data) == ("open", b"")


def test_a_cancelled_batch_closes_its_sockets_and_gives_its_slots_back():
    silent, port = _listener()

    async def run() -> bool:
        slots = asyncio.Semaphore(4)
        batch = TcpBatch("127.0.0.1", [(port, 32), (port, 32)], 5.0, slots)
        task = asyncio.ensure_future(batch.run())
        await asyncio.sleep(0.1)  # both connected, both waiting for bytes that never come
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        batch.close()
        assert [d.sock for d in batch._dials] == [None, None]
        assert [o.error for o in batch.outcomes if o is not None] == ["cancelled", "cancelled"]
        return await _all_free(slots, 4)

    try:
        assert asyncio.run(run())
    finally:
        silent.close()
