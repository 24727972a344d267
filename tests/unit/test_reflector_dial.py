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


def _time_wait_on(port: int) -> bool:
    """Is a TIME_WAIT socket left on local port `port` (IPv4)?"""
    with open("/proc/net/tcp") as fh:
        rows = [line.split() for line in fh.readlines()[1:]]
    return any(int(r[1].split(":")[1], 16) == port and r[3] == "06" for r in rows)


def test_a_batch_reports_each_port_in_order_and_closes_politely_where_the_peer_is_open():
    greeter, greet_port = _listener()
    silent, silent_port = _listener()
    refused = _closed_port()

    async def run() -> tuple[list, bool, bytes]:
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
        ended = quiet.recv(1)  # a FIN: b"" (a reset would raise ConnectionResetError)
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
    assert ended == b""  # the peer that is still open (a service) gets an ordinary close


def test_a_peer_that_closed_after_its_line_is_reset_and_keeps_no_time_wait():
    server, port = _listener()

    async def run() -> list:
        batch = TcpBatch("127.0.0.1", [(port, 17)], 2.0)  # exactly the line: the FIN is seen without a read
        task = asyncio.ensure_future(batch.run())
        conn = await asyncio.get_running_loop().run_in_executor(None, lambda: server.accept()[0])
        conn.send(b"NATLINK-PROBE 42\n", socket.MSG_MORE)
        conn.close()  # the line and the FIN, as the nonce listener sends them
        outcomes = await task
        batch.close()
        return outcomes

    try:
        [out] = asyncio.run(run())
        assert (out.outcome, out.data) == ("open", b"NATLINK-PROBE 42\n")
        # an ordinary close would leave the listener's side in TIME_WAIT for a minute; the reset leaves nothing
        assert not _time_wait_on(port)
    finally:
        server.close()


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
