"""Fixtures shared by the test modules.

Data (``course_utils.data``): an isolated cache folder, a local HTTP server with handlers
that misbehave on purpose, a refused port, and a way to register a small dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

Behaviour = Callable[[BaseHTTPRequestHandler], None]


# --------------------------------------------------------------------------- data


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose answer per path is set by the test.

    ``route(path, behaviour)`` sets what a GET of ``path`` does; the factory methods
    (``file``, ``not_found``, ``truncated``, ...) build the behaviours. ``hits`` counts the
    requests per path.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # set at teardown: handlers that hang return
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?")[0]
                server.hits[path] += 1
                behaviour = server.routes.get(path, LocalServer.not_found())
                try:
                    behaviour(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, interrupt): expected here

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        """Return the full URL of ``path``."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def route(self, path: str, behaviour: Behaviour) -> str:
        """Make GET ``path`` run ``behaviour``; return the URL."""
        self.routes["/" + path.lstrip("/")] = behaviour
        return self.url(path)

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # Behaviours ---------------------------------------------------------------------

    @staticmethod
    def _headers(handler: BaseHTTPRequestHandler, length: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()

    @staticmethod
    def file(body: bytes) -> Behaviour:
        """Serve ``body`` in full."""

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            LocalServer._headers(handler, len(body))
            handler.wfile.write(body)

        return behaviour

    @staticmethod
    def not_found() -> Behaviour:
        """Answer 404."""
        return lambda handler: handler.send_error(404, "Not Found")

    @staticmethod
    def truncated(body: bytes, keep: int) -> Behaviour:
        """Announce ``len(body)`` bytes, send ``keep`` of them, close the connection."""

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            LocalServer._headers(handler, len(body))
            handler.wfile.write(body[:keep])
            handler.wfile.flush()
            handler.close_connection = True

        return behaviour

    def never_answer(self) -> Behaviour:
        """Accept the request and send nothing until teardown."""
        return lambda handler: self.release.wait(30)

    def stall_after(self, body: bytes, sent: int) -> Behaviour:
        """Send the headers and ``sent`` bytes, then nothing until teardown."""

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            LocalServer._headers(handler, len(body))
            handler.wfile.write(body[:sent])
            handler.wfile.flush()
            self.release.wait(30)

        return behaviour

    @staticmethod
    def drip(body: bytes, chunk: int, delay_s: float) -> Behaviour:
        """Send ``body`` in chunks of ``chunk`` bytes, ``delay_s`` apart."""

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            LocalServer._headers(handler, len(body))
            for start in range(0, len(body), chunk):
                handler.wfile.write(body[start : start + chunk])
                handler.wfile.flush()
                time.sleep(delay_s)

        return behaviour

    def interrupt_client_after(self, body: bytes, sent: int) -> Behaviour:
        """Send ``sent`` bytes, then send SIGINT to the main thread (a Ctrl-C mid-download)."""

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            LocalServer._headers(handler, len(body))
            handler.wfile.write(body[:sent])
            handler.wfile.flush()
            time.sleep(0.2)  # let the client write what it received
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            self.release.wait(30)

        return behaviour

    @staticmethod
    def fail_first(times: int, failing: Behaviour, then: Behaviour) -> Behaviour:
        """Run ``failing`` for the first ``times`` requests, then ``then``."""
        count = Counter()

        def behaviour(handler: BaseHTTPRequestHandler) -> None:
            count["n"] += 1
            (failing if count["n"] <= times else then)(handler)

        return behaviour


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A local HTTP server, stopped (and its hanging handlers released) at teardown."""
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL on 127.0.0.1 whose port is bound but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/data.nwb"


@pytest.fixture
def data_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, not yet created cache folder (``COURSE_DATA_DIR``), no mirror, no proxy,
    no waiting between retries, and no host but 127.0.0.1 (a test that forgot to point a
    dataset at the local server fails as offline instead of reaching the internet)."""
    from course_utils.data import download

    real_getaddrinfo = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    # `make test` sets COURSE_OFFLINE for the book build; these tests download from
    # 127.0.0.1 only (enforced above), so they lift it.
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "RETRY_BACKOFF_S", 0.0)
    return cache


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Return ``register(name, body, urls, filename=None)``: put a dataset whose sha256 is
    that of ``body`` in the registry for this test (replacing an entry of the same name). The
    entry is downloaded, never bundled, so a test can serve a bundled dataset's file too."""
    from course_utils.data.registry import REGISTRY, Dataset

    def _register(name: str, body: bytes, urls: tuple[str, ...], filename: str | None = None) -> Dataset:
        fields = dict(
            name=name,
            urls=tuple(urls),
            sha256=hashlib.sha256(body).hexdigest(),
            size_bytes=len(body),
            bundled=False,
        )
        if name in REGISTRY:
            filename = filename or REGISTRY[name].filename
            entry = dataclasses.replace(REGISTRY[name], filename=filename, **fields)
        else:
            entry = Dataset(
                filename=filename or f"{name}.bin",
                description="test data",
                citation="none",
                license="none",
                chapters=(0,),
                loader=None,
                **fields,
            )
        monkeypatch.setitem(REGISTRY, name, entry)
        return entry

    return _register


# --------------------------------------------------------------------------- torch


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run a test on one torch thread: small tensors gain nothing from a second thread and
    lose much to synchronisation on a busy machine. The previous count is restored."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 for the block; yield its base URL."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
