"""``python -m wecom.simulator``: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import sys

from . import defaults
from .config import SimConfig
from .seed import seed_demo
from .server import SimulatorServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wecom.simulator",
        description="WeCom + WeChat mini-program simulator. Identity and secrets come from WECOM_CORP_ID, "
        "WECOM_AGENT_ID, WECOM_AGENT_SECRET, WECOM_CONTACT_SECRET, WECOM_TOKEN, "
        "WECOM_ENCODING_AES_KEY, MINIPROGRAM_APPID, MINIPROGRAM_SECRET (dev defaults otherwise).",
    )
    parser.add_argument("--host", default=defaults.HOST)
    parser.add_argument("--port", type=int, default=defaults.PORT)
    parser.add_argument(
        "--callback-url",
        default=defaults.CALLBACK_URL,
        help="where callbacks are POSTed (empty: record only)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulator seconds per real second (e.g. 3600: a day in 24 s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible ids and picks")
    parser.add_argument("--seed-demo", action="store_true", help="start with a small demo corp")
    return parser.parse_args(argv)


def build_server(args: argparse.Namespace) -> SimulatorServer:
    """The server the arguments describe (not started)."""
    config = SimConfig.from_env(
        callback_url=args.callback_url or None, time_scale=args.time_scale, seed=args.seed
    )
    server = SimulatorServer(config, host=args.host, port=args.port, log_requests=True)
    if args.seed_demo:
        with server.world.lock:
            seed_demo(server.world)
    return server


def _announce(server: SimulatorServer) -> None:
    config = server.world.config
    base = server.base_url
    print(f"WeCom simulator for corp {config.corp_id} (agent {config.agent_id}) listening on {base}")
    print(f"  WECOM_API_BASE={base}/cgi-bin/   WECHAT_API_BASE={base}/   control: {base}/sim/state")
    print(f"  callbacks -> {config.callback_url or '(not delivered)'}   time scale x{config.time_scale}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C."""
    server = build_server(parse_args(argv))
    try:
        server.serve_forever(ready=_announce)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
