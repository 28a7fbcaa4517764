"""create_simulator_app: the Flask app serving one World."""

from __future__ import annotations

from flask import Flask, Response

from .routes import register
from .routes.common import EXTENSION, json_response
from .world import World


def create_simulator_app(world: World) -> Flask:
    """A Flask app answering as WeCom and WeChat for ``world``. Starts no threads: call
    ``world.start()`` (SimulatorServer does) for callback delivery and the ticker."""
    app = Flask("wecom_simulator")
    app.extensions[EXTENSION] = world

    @app.errorhandler(404)
    def _not_found(_error) -> Response:
        # Not a WeCom answer: the simulator does not implement that API (or the path is wrong).
        return json_response({"errcode": 404, "errmsg": "not served by the WeCom simulator"}, 404)

    @app.errorhandler(405)
    def _wrong_method(_error) -> Response:
        return json_response({"errcode": 405, "errmsg": "method not allowed"}, 405)

    register(app)
    return app
