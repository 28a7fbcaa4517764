"""The demo the run command plays once everything is up: each feature adds a step.

    python scripts/demo.py --app http://127.0.0.1:5000 --sim http://127.0.0.1:8081

Every step talks to the running app and simulator over HTTP, as a user or WeCom would, and
prints what to look at. A step that fails says so and the demo goes on.
"""

from __future__ import annotations

import argparse
import re
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
        self.username, self.password = username, password
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


def step_oneid(demo: Demo) -> None:
    """OneID: two WeCom records of one person get a merge suggestion; accepting it merges them."""
    userid = demo.sim.state("users")["users"][0]["userid"]
    token = requests.get(f"{demo.sim_url}/cgi-bin/gettoken", timeout=10, params={
        "corpid": ENV_DEFAULTS["WECOM_CORP_ID"], "corpsecret": ENV_DEFAULTS["WECOM_CONTACT_SECRET"]}).json()
    way = requests.post(f"{demo.sim_url}/cgi-bin/externalcontact/add_contact_way", timeout=10,
                        params={"access_token": token["access_token"]},
                        json={"type": 1, "scene": 2, "state": "demo-oneid", "user": [userid]}).json()
    # The same person reaches us twice (two WeCom accounts, same name and company): a weak signal.
    people = [demo.sim.add_customer(name="周演示", type=2, corp_name=f"OneID Demo Co {time.time():.0f}")
              for _ in range(2)]
    for person in people:
        demo.sim.scan(config_id=way["config_id"], external_userid=person["external_userid"])

    def suggestion():
        items = demo.api("GET", "/merge-suggestions")["items"]
        return next((s for s in items if s["evidence"].get("corp_name") == people[0]["corp_name"]), None)

    found = demo.wait_for(suggestion)
    print(f"  suggestion #{found['id']}: customers {found['customer_ids']} ({found['reason']})"
          "  (GET /api/v1/merge-suggestions)")
    merged = demo.api("POST", f"/merge-suggestions/{found['id']}/accept",
                      json={"reason": "demo: same person, confirmed on the phone"})
    survivor = merged["survivor_id"]
    resolved = demo.api("GET", "/identities/resolve",
                        params={"type": "external_userid", "value": people[1]["external_userid"]})
    print(f"  accepted → merge #{merged['merges'][0]['id']}: customer #{survivor} holds both; "
          f"{people[1]['external_userid']} now resolves to #{resolved['customer_id']}")
    for entry in demo.api("GET", f"/customers/{survivor}/timeline")["items"]:
        print(f"    {entry['at'][:19]}  {entry['kind']:<12} {entry.get('staff_userid') or entry.get('actor') or ''}"
              f"  {entry.get('detail') or ''}")
    print(f"  (GET /api/v1/customers/{survivor}/timeline; undo with POST /api/v1/customers/{survivor}/unmerge)")


def step_cards(demo: Demo) -> None:
    """Smart card: a WeChat user logs into the mini-program, reads a rep's card; intent rises."""
    userid = demo.sim.state("users")["users"][0]["userid"]
    rep = demo.wait_for(lambda: next((s for s in demo.api("GET", "/staff", params={"q": userid})["items"]
                                      if s["userid"] == userid), None))
    existing = demo.api("GET", "/cards", params={"staff_id": rep["id"]})["items"]
    card = existing[0] if existing else demo.api("POST", "/cards", json={
        "staff_id": rep["id"], "display_name": rep["name"] or userid, "title": "销售经理", "company": "Demo Co",
        "intro": "Ask me anything about our products."})
    price = demo.api("POST", f"/cards/{card['id']}/contents", json={
        "kind": "article", "title": "价格表 Price sheet", "url": "https://example.com/prices"})
    way = demo.wait_for(lambda: demo.api("GET", f"/cards/{card['id']}")["contact_way"]["config_id"])
    print(f"  card #{card['id']} of {userid}, contact way {way} (state card:{card['id']})  (GET /api/v1/cards)")
    # The visitor's side: wx.login in the mini-program, then our own session token.
    wechat = demo.sim.mint_js_code(name="名片访客 Visitor")
    mp = f"{demo.app}/mp/v1"
    token = requests.post(f"{mp}/session", json={"code": wechat["code"]}, timeout=10).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    shown = requests.get(f"{mp}/cards/{card['id']}", headers=auth, timeout=10).json()
    now = int(time.time() * 1000)
    events = [
        {"id": f"demo-{now}-0", "type": "card_view", "ts": now - 60_000, "card_id": card["id"]},
        {"id": f"demo-{now}-1", "type": "content_view", "ts": now - 50_000, "card_id": card["id"],
         "content_id": price["id"]},
        *[{"id": f"demo-{now}-h{i}", "type": "heartbeat", "ts": now - 50_000 + 5_000 * i, "card_id": card["id"],
           "content_id": price["id"]} for i in range(1, 8)],
        {"id": f"demo-{now}-2", "type": "click_phone", "ts": now - 10_000, "card_id": card["id"]},
        {"id": f"demo-{now}-3", "type": "add_wecom", "ts": now - 5_000, "card_id": card["id"]},
    ]
    sent = requests.post(f"{mp}/events", json={"events": events}, headers=auth, timeout=10)
    print(f"  visitor {wechat['openid'][:10]}… opened '{shown['display_name']}' ({len(shown['contents'])} items), "
          f"sent {sent.json()['accepted']} events  (POST /mp/v1/session, GET /mp/v1/cards/{card['id']}, "
          "POST /mp/v1/events)")
    # The admin finds the visitor by the openid the server learnt (the client never sent it).
    customer_id = demo.api("GET", "/identities/resolve", params={"type": "mp_openid", "value": wechat["openid"]})[
        "customer_id"]
    intent = demo.wait_for(lambda: demo.api("GET", "/cards/intents", params={"customer_id": customer_id})["items"])[0]
    stats = demo.api("GET", f"/cards/{card['id']}/stats")
    print(f"  intent of customer #{intent['customer_id']} towards {userid}: {intent['score']:.1f} → "
          f"{intent['level']}  (GET /api/v1/cards/intents)")
    print(f"  card stats: {stats['views']} views, {stats['unique_visitors']} visitors, "
          f"{stats['avg_dwell_seconds']} s average dwell  (GET /api/v1/cards/{card['id']}/stats)")


def step_contact_codes(demo: Demo) -> None:
    """Channel code: an admin creates a code, a customer scans it, the welcome arrives in time."""
    reps = demo.api("GET", "/staff", params={"status": "active"})["items"][:2]
    if not reps:
        raise RuntimeError("no staff yet: run `flask --app wsgi wecom sync` (or the WeCom link step) first")
    code = demo.api("POST", "/contact-codes", json={
        "name": "2026 展会展台 Expo booth", "channel": "expo-2026", "members": [{"userid": r["userid"]} for r in reps],
        "welcome": {"text": "您好 {customer_name}，我是{rep_name}，欢迎来到 2026 展会！",
                    "attachments": [{"type": "link", "title": "展会资料 Brochure", "url": "https://example.com/expo"}]},
        "tags": [{"name": "expo-2026"}]})
    print(f"  code #{code['id']} state {code['state']} → WeCom way {code['config_id']} for "
          f"{', '.join(code['wecom_users'])}  (POST /api/v1/contact-codes, poster: GET …/{code['id']}/poster.png)")
    scan = demo.sim.scan(config_id=code["config_id"], customer={"name": "展会访客 Expo visitor"})
    welcome = demo.wait_for(lambda: next((w for w in demo.sim.state("welcomes")["welcomes"]
                                          if w["external_userid"] == scan["external_userid"]), None))
    print(f"  scan by {scan['external_userid']} → rep {scan['userid']}; welcome delivered "
          f"{welcome['seconds_after_add']} s after the add: '{welcome['text']}'  (/sim/state?sections=welcomes)")

    def totals():
        counts = demo.api("GET", f"/contact-codes/{code['id']}/stats")["totals"]
        return counts if counts["welcomes_sent"] else None

    stats = demo.wait_for(totals)
    print(f"  stats: {stats['adds']} add, {stats['welcomes_sent']} welcome sent  "
          f"(GET /api/v1/contact-codes/{code['id']}/stats, …/stats.csv)")
    for add in demo.api("GET", f"/contact-codes/{code['id']}/adds")["items"]:
        print(f"  brought {add['customer_name']} (customer #{add['customer_id']}) to {add['userid']}: welcome "
              f"{add['welcome_status']}, tags {add['tag_status']}  (GET …/adds, …/assignments; "
              f"the console's /console/contact-codes/{code['id']})")


def step_handover(demo: Demo) -> None:
    """A rep leaves: their customers are handed over to the department's other rep by policy."""
    run = int(time.time()) % 100000  # fresh reps each run: the app keeps earlier runs' staff
    leaver, taker = f"leaver{run}", f"taker{run}"
    for userid, name in ((leaver, "离职演示 Leaver"), (taker, "接手演示 Taker")):
        demo.sim.add_user(userid, name=name, department=[3], notify=True, wait=True)  # create_user → Staff
    # Demo pace: poll WeCom's results every few seconds (the default starts at a minute).
    demo.api("PUT", "/handovers/policy", json={"poll_seconds": [2, 3, 5]})
    token = requests.get(f"{demo.sim_url}/cgi-bin/gettoken", timeout=10, params={
        "corpid": ENV_DEFAULTS["WECOM_CORP_ID"], "corpsecret": ENV_DEFAULTS["WECOM_CONTACT_SECRET"]}).json()
    way = requests.post(f"{demo.sim_url}/cgi-bin/externalcontact/add_contact_way", timeout=10,
                        params={"access_token": token["access_token"]},
                        json={"type": 1, "scene": 2, "state": "demo-handover", "user": [leaver]}).json()
    for i in range(3):
        demo.sim.scan(config_id=way["config_id"], customer={"name": f"交接客户 {i + 1}"}, already_chatted=True)
    demo.wait_for(lambda: demo.api("GET", "/customers", params={"staff": leaver})["total"] == 3)
    demo.sim.resign_user(leaver)
    handover = demo.wait_for(lambda: next(iter(demo.api("GET", "/handovers", params={"staff": leaver})["items"]),
                                          None))
    print(f"  {leaver} resigned → hand-over #{handover['id']} ({handover['trigger']}): {handover['counts']}  "
          f"(GET /api/v1/handovers/{handover['id']})")
    demo.sim.advance(86400 + 60)  # WeCom's 24 h for the customers to refuse pass
    done = demo.wait_for(lambda: (h := demo.api("GET", f"/handovers/{handover['id']}"))["status"] == "finished"
                         and h, timeout=30)
    customers = demo.api("GET", f"/handovers/{handover['id']}/customers")["items"]
    print(f"  finished: {done['counts']}; " + ", ".join(
        f"{c['customer_name']} → {c['takeover_userid']}" for c in customers)
        + f"  (GET /api/v1/handovers/{handover['id']}/customers)")


def step_alerts(demo: Demo) -> None:
    """Behaviour alerts: the rep hears of card activity, and rep and admin of a lost customer."""
    users = [u["userid"] for u in demo.sim.state("users")["users"] if u.get("active", True)]
    rep, boss = users[0], users[1]
    demo.api("PATCH", "/alert-settings", json={"admin_userids": [boss]})
    print(f"  admins told about lost customers and failures: {boss}  (PATCH /api/v1/alert-settings)")
    for alert in demo.api("GET", "/alerts", params={"staff": rep, "per_page": 5})["items"]:
        states = ", ".join(f"{d['userid']}: {d['state']}" for d in alert["deliveries"])
        print(f"    {alert['kind']:<14} {alert['title']}  [{states}]")
    token = requests.get(f"{demo.sim_url}/cgi-bin/gettoken", timeout=10, params={
        "corpid": ENV_DEFAULTS["WECOM_CORP_ID"], "corpsecret": ENV_DEFAULTS["WECOM_CONTACT_SECRET"]}).json()
    way = requests.post(f"{demo.sim_url}/cgi-bin/externalcontact/add_contact_way", timeout=10,
                        params={"access_token": token["access_token"]},
                        json={"type": 1, "scene": 2, "state": "demo-alerts", "user": [rep]}).json()
    name = f"流失演示 Lost {int(time.time()) % 100000}"
    scan = demo.sim.scan(config_id=way["config_id"], customer={"name": name})
    demo.wait_for(lambda: demo.api("GET", "/customers", params={"q": name})["items"])
    demo.sim.customer_deletes_rep(scan["external_userid"], rep)

    def delivered():
        for alert in demo.api("GET", "/alerts", params={"kind": "lost_customer", "staff": rep})["items"]:
            if name in alert["title"] and all(d["state"] == "sent" for d in alert["deliveries"]):
                return alert
        return None

    alert = demo.wait_for(delivered)
    print(f"  {name} deleted {rep} → alert #{alert['id']} '{alert['title']}' sent to "
          + ", ".join(f"{d['userid']} (msgid {d['msgid'][:8]}…)" for d in alert["deliveries"])
          + "  (GET /api/v1/alerts?kind=lost_customer)")
    log = demo.sim.state("messages")["messages"]["log"]
    for message in [m for m in log if m["summary"] == alert["title"]]:
        print(f"    WeCom → {message['userid']}: {message['msgtype']} '{message['summary']}' ({message['status']})")
    print(f"  on the customer's timeline: GET /api/v1/customers/{alert['customer_id']}/timeline")


def step_console(demo: Demo) -> None:
    """The admin console: sign in through the form (CSRF token, session cookie) and open the dashboard."""
    browser = requests.Session()
    page = browser.get(f"{demo.app}/console/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    signed_in = browser.post(f"{demo.app}/console/login", timeout=10, allow_redirects=False,
                             data={"username": demo.username, "password": demo.password, "csrf_token": token})
    if signed_in.status_code != 302:
        raise RuntimeError(f"sign-in answered {signed_in.status_code}")
    dashboard = browser.get(f"{demo.app}/console/", timeout=10, allow_redirects=False)
    if dashboard.status_code != 200:  # a redirect here: the cookie was not kept (SESSION_COOKIE_SECURE over http?)
        raise RuntimeError(f"the dashboard answered {dashboard.status_code}")
    figures = dict(re.findall(r'data-testid="(total-adds|total-lost|total-alerts-sent|handovers-running)">(\d+)<',
                              dashboard.text))
    print(f"  open {demo.app}/console/ and sign in as {demo.username} / {demo.password}")
    print(f"  dashboard (last 14 days): {figures.get('total-adds')} added, {figures.get('total-lost')} lost, "
          f"{figures.get('total-alerts-sent')} alerts delivered, {figures.get('handovers-running')} hand-overs running")


def step_sidebar(demo: Demo) -> None:
    """The rep sidebar: a rep signs in through WeCom's OAuth (the simulator's) and reads a customer's 360."""
    customers = demo.api("GET", "/customers", params={"per_page": 50})["items"]
    detail = next(d for d in (demo.api("GET", f"/customers/{c['id']}") for c in customers)
                  if any(f["status"] == "active" for f in d["follows"]))
    rep = next(f for f in detail["follows"] if f["status"] == "active")["staff_userid"]
    browser = requests.Session()
    start = browser.get(f"{demo.app}/sidebar/oauth/start", timeout=10, allow_redirects=False)
    callback = demo.sim.authorize(start.headers["Location"], rep)  # the rep opens the app in WeCom
    signed_in = browser.get(callback, timeout=10, allow_redirects=False)
    if signed_in.status_code != 302:
        raise RuntimeError(f"the OAuth callback answered {signed_in.status_code}")
    external = next((i["value"] for i in detail["identities"] if i["type"] == "external_userid"), None)
    path = f"/sidebar/v1/contacts/{external}" if external else f"/sidebar/v1/customers/{detail['id']}"
    view = browser.get(f"{demo.app}{path}", timeout=10).json()
    if "error" in view:
        raise RuntimeError(view["error"]["message"])
    tags = ", ".join(t["name"] for f in view["follows"] if f["staff_userid"] == rep for t in f["tags"]) or "none"
    print(f"  {rep} signed in through {start.headers['Location'].split('?')[0]} → GET {path}")
    print(f"  360 of '{view['customer']['name']}': intent {view['intent']['level']}, tags {tags}, "
          f"{len(view['notes'])} notes, {len(view['visits'])} card visits, {len(view['alerts'])} alerts, "
          f"{len(view['handovers'])} hand-overs")
    print(f"  the page: {demo.app}/sidebar/customers/{view['customer_id']} (in WeCom: the chat toolbar opens /sidebar)")


STEPS = [step_wecom_link, step_oneid, step_cards, step_contact_codes, step_handover, step_alerts, step_console,
         step_sidebar]


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
