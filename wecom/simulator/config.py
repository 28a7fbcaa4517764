"""SimConfig: the simulated corp's identity and every tunable rule of the simulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import defaults
from .errors import ControlError

# Settings the control API may change while the simulator runs (identity and keys may not:
# the app holds copies of them).
RUNTIME_FIELDS = frozenset(
    {
        "callback_url",
        "time_scale",
        "token_ttl",
        "ticket_ttl",
        "code_ttl",
        "welcome_code_ttl",
        "welcome_code_clock",
        "transfer_accept_seconds",
        "transfer_page_size",
        "default_contact_limit",
        "groupchat_transfer_daily_limit",
        "msg_per_minute",
        "msg_per_hour",
        "rate_limit_per_minute",
        "rate_limit_per_hour",
        "max_concurrency",
        "jscode_per_minute",
        "callback_timeout",
        "callback_attempts",
        "callback_retry_pause",
        "scan_pick",
    }
)


@dataclass
class SimConfig:
    """Identity of the simulated corp and mini-program, plus the rules' numbers."""

    corp_id: str = defaults.CORP_ID
    agent_id: str = defaults.AGENT_ID
    agent_secret: str = defaults.AGENT_SECRET
    contact_secret: str = defaults.CONTACT_SECRET
    token: str = defaults.TOKEN
    encoding_aes_key: str = defaults.ENCODING_AES_KEY
    miniprogram_appid: str = defaults.MINIPROGRAM_APPID
    miniprogram_secret: str = defaults.MINIPROGRAM_SECRET

    # Where callbacks are POSTed; None keeps them recorded but undelivered ("skipped").
    callback_url: str | None = None
    time_scale: float = 1.0
    seed: int | None = None

    token_ttl: int = 7200  # access tokens, simulator seconds
    ticket_ttl: int = 7200  # jsapi / agent_config tickets, simulator seconds
    code_ttl: int = 300  # OAuth, wx.login and phone codes, simulator seconds
    welcome_code_ttl: float = 20.0
    # "real": welcome codes age in wall-clock seconds (WeCom's 20 s is a real deadline the app
    # must meet even when the rest of the world runs fast); "sim": they follow the sim clock.
    welcome_code_clock: str = "real"
    transfer_accept_seconds: int = 86400
    transfer_page_size: int = 100
    default_contact_limit: int = 20000
    groupchat_transfer_daily_limit: int = 300
    msg_per_minute: int = 30
    msg_per_hour: int = 1000
    rate_limit_per_minute: int = 10000
    rate_limit_per_hour: int = 150000
    max_concurrency: int = 200
    jscode_per_minute: int = 100
    callback_timeout: float = 5.0
    callback_attempts: int = 3
    callback_retry_pause: float = 0.5
    scan_pick: str = "round_robin"  # or "random"
    tick_interval: float = 0.1  # how often the background ticker settles due transfers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SimConfig:
        """Identity from the app's environment variables (or dev defaults), rules from overrides."""
        env = defaults.from_env(environ)
        return cls(
            corp_id=env["WECOM_CORP_ID"],
            agent_id=env["WECOM_AGENT_ID"],
            agent_secret=env["WECOM_AGENT_SECRET"],
            contact_secret=env["WECOM_CONTACT_SECRET"],
            token=env["WECOM_TOKEN"],
            encoding_aes_key=env["WECOM_ENCODING_AES_KEY"],
            miniprogram_appid=env["MINIPROGRAM_APPID"],
            miniprogram_secret=env["MINIPROGRAM_SECRET"],
            **overrides,
        )

    def update(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply runtime changes (control API); return the changed fields. Unknown or fixed
        fields and values of the wrong type are refused as a whole."""
        unknown = set(patch) - RUNTIME_FIELDS
        if unknown:
            raise ControlError(400, f"not changeable at run time: {', '.join(sorted(unknown))}")
        types = {f.name: f.type for f in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        for name, value in patch.items():
            coerced[name] = _coerce(name, types[name], value)
        for name, value in coerced.items():
            setattr(self, name, value)
        return coerced

    def public(self) -> dict[str, Any]:
        """Everything but the secrets, for the control API's state."""
        hidden = {"agent_secret", "contact_secret", "miniprogram_secret", "encoding_aes_key", "token"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in hidden}


def _coerce(name: str, type_name: str, value: Any) -> Any:
    if name == "callback_url":
        if value is not None and not isinstance(value, str):
            raise ControlError(400, "callback_url must be a string or null")
        return value or None
    if name == "welcome_code_clock" and value not in ("real", "sim"):
        raise ControlError(400, "welcome_code_clock must be 'real' or 'sim'")
    if name == "scan_pick" and value not in ("round_robin", "random"):
        raise ControlError(400, "scan_pick must be 'round_robin' or 'random'")
    try:
        if type_name == "int":
            number = int(value)
        elif type_name == "float":
            number = float(value)
        else:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ControlError(400, f"{name} must be a number") from exc
    if number < 0 or (name in ("time_scale", "callback_attempts", "max_concurrency") and number <= 0):
        raise ControlError(400, f"{name} out of range")
    return number
