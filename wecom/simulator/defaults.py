"""Development defaults shared by the simulator and the app's configuration.

One place for the demo corp's identity and secrets, so ``python -m wecom.simulator`` and the app
agree out of the box. None of these are real credentials: they only open the local simulator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

CORP_ID = "ww_demo_corp"
AGENT_ID = "1000002"
# Public development values, not secrets: they only unlock the local simulator.
AGENT_SECRET = "demo-agent-secret"  # noqa: S105
CONTACT_SECRET = "demo-contact-secret"  # noqa: S105
TOKEN = "demo-token"  # noqa: S105
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 chars -> 32-byte AES key
MINIPROGRAM_APPID = "wx_demo_app"
MINIPROGRAM_SECRET = "demo-mp-secret"  # noqa: S105

HOST = "127.0.0.1"
PORT = 8081
CALLBACK_URL = "http://127.0.0.1:5000/wecom/callback"
WECOM_API_BASE = f"http://{HOST}:{PORT}/cgi-bin/"
WECHAT_API_BASE = f"http://{HOST}:{PORT}/"

# Environment variable -> development default; the app reads the same names.
ENV_DEFAULTS: dict[str, str] = {
    "WECOM_CORP_ID": CORP_ID,
    "WECOM_AGENT_ID": AGENT_ID,
    "WECOM_AGENT_SECRET": AGENT_SECRET,
    "WECOM_CONTACT_SECRET": CONTACT_SECRET,
    "WECOM_TOKEN": TOKEN,
    "WECOM_ENCODING_AES_KEY": ENCODING_AES_KEY,
    "MINIPROGRAM_APPID": MINIPROGRAM_APPID,
    "MINIPROGRAM_SECRET": MINIPROGRAM_SECRET,
}


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each identity setting from its environment variable, or its development default when unset."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) or default for name, default in ENV_DEFAULTS.items()}
