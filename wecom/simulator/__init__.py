"""A WeCom (企业微信) and WeChat mini-program simulator for testing the SCRM end to end.

Serves the WeCom server API under ``/cgi-bin/``, the WeChat API at the root, delivers signed
and encrypted callbacks, and acts as customers and reps through a control API (``/sim/``).

    from wecom.simulator import SimConfig, SimulatorServer
    with SimulatorServer(SimConfig(callback_url="http://127.0.0.1:5000/wecom/callback")) as sim:
        sim.control.seed_demo()
"""

from __future__ import annotations

from .app import create_simulator_app
from .config import SimConfig
from .control_client import SimulatorControl, SimulatorError
from .server import SimulatorServer
from .world import World

__all__ = [
    "SimConfig",
    "SimulatorControl",
    "SimulatorError",
    "SimulatorServer",
    "World",
    "create_simulator_app",
]
