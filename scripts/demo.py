"""The demo the run command plays once everything is up: each feature adds a step.

    python scripts/demo.py --app http://127.0.0.1:5000 --sim http://127.0.0.1:8081

Every step talks to the running app and simulator over HTTP, as a user or WeCom would, and
prints what to look at. A step that fails says so and the demo goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wecom.simulator import SimulatorControl  # noqa: E402
from wecom.simulator.defaults import ENV_DEFAULTS  # noqa: E402


class Demo:
    def __init__(self, app: str, sim: str, username: str, password: str):
        self.app, self.sim_url = app.rstrip("/"), sim.rstrip("/")
        self.sim = SimulatorControl(self.sim_url)
        token = requests.post(f"{self.app}/api/v1/auth/token", json={"username": username, "password": password},
                              timeout=10).json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def api(self, method: str, path: str, **kwargs):
        resp = requests.request(method, f"{self.app}/api/v1{path}", headers=self.headers, timeout=10, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def wait_for(self, predicate, timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.3)
        raise TimeoutError("the demo waited too long; see instance/logs/worker.log")


def step_wecom_link(demo: Demo) -> None:
    """A customer scans a rep's contact way; the callback flows in and the customer appears."""
    userid = demo.sim.state("users")["users"][0]["userid"]
    # A contact way as a WeCom admin would make it in the WeCom console.
    token = requests.get(f"{demo.sim_url}/cgi-bin/gettoken", timeout=10, params={
        "corpid": ENV_DEFAULTS["WECOM_CORP_ID"], "corpsecret": ENV_DEFAULTS["WECOM_CONTACT_SECRET"]}).json()
    way = requests.post(f"{demo.sim_url}/cgi-bin/externalcontact/add_contact_way", timeout=10,
                        params={"access_token": token["access_token"]},
                        json={"type": 1, "scene": 2, "state": "demo-link", "user": [userid]}).json()
    scan = demo.sim.scan(config_id=way["config_id"], customer={"name": "演示客户 Demo"})
    found = demo.wait_for(lambda: demo.api("GET", "/customers", params={"q": "演示客户"})["items"])
    print(f"  scan by {scan['external_userid']} → rep {scan['userid']} → customer #{found[0]['id']} "
          f"'{found[0]['name']}'  (GET /api/v1/customers/{found[0]['id']})")


STEPS = [step_wecom_link]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="http://127.0.0.1:5000")
    parser.add_argument("--sim", default="http://127.0.0.1:8081")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin-demo-password")
    args = parser.parse_args()
    demo = Demo(args.app, args.sim, args.username, args.password)
    failures = 0
    for step in STEPS:
        print(f"demo: {step.__doc__}")
        try:
            step(demo)
        except Exception as exc:  # one broken step must not hide the others
            failures += 1
            print(f"  FAILED: {type(exc).__name__}: {exc}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
