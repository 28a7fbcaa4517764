"""SimulatorServer: the simulator on a real port, in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_simulator_app
from .config import SimConfig
from .control_client import SimulatorControl
from .world import World


class _KeepAliveRequestHandler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, as WeCom's servers answer: a client's pooled connection is
    reused rather than a new TCP connection made for every call (werkzeug defaults to 1.0)."""

    protocol_version = "HTTP/1.1"


class _QuietRequestHandler(_KeepAliveRequestHandler):
    """No access log line per request (tests make thousands)."""

    def log_request(self, code="-", size="-") -> None:
        pass


class SimulatorServer:
    """Serve a World over HTTP with werkzeug's threaded server.

    ``port=0`` picks a free port; ``base_url`` tells which. ``log_requests`` prints werkzeug's
    access log (the CLI does). Usable as a context manager.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        world: World | None = None,
        log_requests: bool = False,
    ):
        self.world = world or World(config)
        self.host = host
        self.port = port
        self.app = create_simulator_app(self.world)
        self._handler = _KeepAliveRequestHandler if log_requests else _QuietRequestHandler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._control: SimulatorControl | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    @property
    def wecom_api_base(self) -> str:
        """What the app sets as WECOM_API_BASE."""
        return f"{self.base_url}/cgi-bin/"

    @property
    def wechat_api_base(self) -> str:
        """What the app sets as WECHAT_API_BASE."""
        return f"{self.base_url}/"

    @property
    def oauth_base(self) -> str:
        """What the app sets as WECOM_OAUTH_BASE (WeCom's web OAuth page)."""
        return f"{self.base_url}/connect/oauth2/authorize"

    @property
    def control(self) -> SimulatorControl:
        """A control client for this server (one, reused)."""
        if self._control is None:
            self._control = SimulatorControl(self.base_url)
        return self._control

    def _bind(self) -> BaseWSGIServer:
        self._server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=self._handler
        )
        self.port = self._server.server_port
        self.world.start()
        return self._server

    def start(self) -> SimulatorServer:
        """Bind, start serving in a daemon thread, start the world's background threads."""
        self._bind()
        # A short poll interval so stop() returns quickly (tests start and stop many servers).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="sim-http", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, ready: Callable[[SimulatorServer], None] | None = None) -> None:
        """Serve in the calling thread (the CLI) until interrupted; ``ready`` is called once bound."""
        server = self._bind()
        if ready:
            ready(self)
        try:
            server.serve_forever()
        finally:
            self.world.stop()

    def stop(self) -> None:
        """Stop serving and the world's threads."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(5)
        self.world.stop()
        if self._control:
            self._control.close()
            self._control = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
