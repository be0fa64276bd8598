"""``ratify serve`` with several workers keeps TCP_NODELAY on the connections it accepts
(uvicorn's own listening socket loses it: see ``ratify.serving``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import socket

from ratify.serving import NoDelayConfig


def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY on a connection that asyncio accepts from ``listener``, as a uvicorn
    worker would accept it."""

    async def main() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        host, port = listener.getsockname()[:2]
        _reader, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()

    # In a thread of its own: a browser test's driver may hold this thread's event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result(timeout=30)


def _in_worker(listener: socket.socket, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    answer.put(_accepted_nodelay(listener))


def _listener() -> socket.socket:
    config = NoDelayConfig("ratify.cli:app_factory", host="127.0.0.1", port=0, workers=2)
    return config.bind_socket()


def test_the_listening_socket_says_tcp() -> None:
    with _listener() as listener:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.get_inheritable()
        assert _accepted_nodelay(listener) == 1


def test_a_worker_process_accepts_with_tcp_nodelay() -> None:
    """Handed to a spawned process as uvicorn's supervisor hands it to each worker."""
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    with _listener() as listener:
        worker = context.Process(target=_in_worker, args=(listener, answer))
        worker.start()
        try:
            assert answer.get(timeout=30) == 1
        finally:
            worker.join(10)
