"""The simulated world's records, each able to render itself the way WeCom's API shows it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Department:
    id: int
    name: str
    parentid: int
    order: int = 0
    name_en: str = ""

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "name_en": self.name_en,
            "department_leader": [],
            "parentid": self.parentid,
            "order": self.order,
        }


@dataclass
class User:
    """A member of the corp (a rep). Resigned users leave the directory but keep their customers
    until those are reassigned."""

    userid: str
    name: str
    department: list[int]
    position: str = ""
    mobile: str = ""
    gender: str = "0"
    email: str = ""
    alias: str = ""
    open_userid: str = ""
    contact_enabled: bool = True  # configured for customer contact (客户联系)
    contact_limit: int | None = None  # None: the corp-wide default
    resigned_at: float | None = None

    @property
    def active(self) -> bool:
        return self.resigned_at is None

    @property
    def main_department(self) -> int:
        return self.department[0] if self.department else 1

    def to_api(self) -> dict:
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "order": [0 for _ in self.department],
            "position": self.position,
            "mobile": self.mobile,
            "gender": self.gender,
            "email": self.email,
            "is_leader_in_dept": [0 for _ in self.department],
            "direct_leader": [],
            "avatar": f"https://wework.qpic.cn/sim/{self.userid}/0",
            "thumb_avatar": f"https://wework.qpic.cn/sim/{self.userid}/100",
            "telephone": "",
            "alias": self.alias,
            "status": 1,
            "address": "",
            "open_userid": self.open_userid,
            "main_department": self.main_department,
        }

    def to_simple(self) -> dict:
        return {
            "userid": self.userid,
            "name": self.name,
            "department": list(self.department),
            "open_userid": self.open_userid,
        }


@dataclass
class Customer:
    """A WeChat user: an external contact of the corp once they add a rep, and a mini-program
    user through their openid. unionid joins the two (OneID)."""

    external_userid: str
    name: str
    unionid: str
    openid: str
    gender: int = 0
    avatar: str = ""
    phone: str = ""
    country_code: str = "86"
    type: int = 1  # 1 WeChat user, 2 WeCom user
    corp_name: str = ""
    created_at: float = 0.0

    def to_api(self) -> dict:
        data = {
            "external_userid": self.external_userid,
            "name": self.name,
            "avatar": self.avatar,
            "type": self.type,
            "gender": self.gender,
            "unionid": self.unionid,
        }
        if self.type == 2:  # WeCom only shows the company for WeCom-user contacts
            data["corp_name"] = self.corp_name
            data["corp_full_name"] = self.corp_name
        return data

    def to_dict(self) -> dict:
        return {**self.to_api(), "openid": self.openid, "phone": self.phone, "created_at": self.created_at}


@dataclass
class Follow:
    """The relation between a rep (userid) and a customer (external_userid)."""

    userid: str
    external_userid: str
    createtime: int
    add_way: int = 1
    state: str = ""
    remark: str = ""
    description: str = ""
    remark_corp_name: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    tag_ids: list[str] = field(default_factory=list)
    oper_userid: str = ""

    def to_follow_user(self, tags: list[dict]) -> dict:
        """Shape of one ``follow_user`` entry of externalcontact/get (tags already resolved)."""
        data = {
            "userid": self.userid,
            "remark": self.remark,
            "description": self.description,
            "createtime": self.createtime,
            "tags": tags,
            "remark_corp_name": self.remark_corp_name,
            "remark_mobiles": list(self.remark_mobiles),
            "oper_userid": self.oper_userid or self.external_userid,
            "add_way": self.add_way,
        }
        if self.state:
            data["state"] = self.state
        return data

    def to_follow_info(self) -> dict:
        """Shape of ``follow_info`` in externalcontact/batch/get_by_user."""
        data = {
            "userid": self.userid,
            "remark": self.remark,
            "description": self.description,
            "createtime": self.createtime,
            "tag_id": list(self.tag_ids),
            "remark_corp_name": self.remark_corp_name,
            "remark_mobiles": list(self.remark_mobiles),
            "oper_userid": self.oper_userid or self.external_userid,
            "add_way": self.add_way,
        }
        if self.state:
            data["state"] = self.state
        return data


@dataclass
class ContactWay:
    config_id: str
    type: int
    scene: int
    created_at: float
    style: int | None = None
    remark: str = ""
    skip_verify: bool = True
    state: str = ""
    user: list[str] = field(default_factory=list)
    party: list[int] = field(default_factory=list)
    is_temp: bool = False
    expires_in: int | None = None
    chat_expires_in: int | None = None
    unionid: str = ""
    conclusions: dict | None = None
    qr_code: str = ""
    updates: int = 0  # update_contact_way calls that hit this way
    scans: int = 0
    next_pick: int = 0  # round-robin position

    def to_api(self) -> dict:
        data = {
            "config_id": self.config_id,
            "type": self.type,
            "scene": self.scene,
            "remark": self.remark,
            "skip_verify": self.skip_verify,
            "state": self.state,
            "user": list(self.user),
            "party": list(self.party),
            "is_temp": self.is_temp,
        }
        if self.style is not None:
            data["style"] = self.style
        if self.qr_code:
            data["qr_code"] = self.qr_code
        if self.is_temp:
            data["expires_in"] = self.expires_in
            data["chat_expires_in"] = self.chat_expires_in
            data["unionid"] = self.unionid
            data["conclusions"] = self.conclusions or {}
        return data

    def to_dict(self) -> dict:
        return {**self.to_api(), "created_at": self.created_at, "updates": self.updates, "scans": self.scans}


@dataclass
class Tag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0

    def to_api(self) -> dict:
        return {"id": self.id, "name": self.name, "create_time": self.create_time, "order": self.order}


@dataclass
class TagGroup:
    group_id: str
    group_name: str
    create_time: int
    order: int = 0
    tag_ids: list[str] = field(default_factory=list)

    def to_api(self, tags: dict[str, Tag], only: set[str] | None = None) -> dict:
        return {
            "group_id": self.group_id,
            "group_name": self.group_name,
            "create_time": self.create_time,
            "order": self.order,
            "tag": [tags[t].to_api() for t in self.tag_ids if only is None or t in only],
        }


@dataclass
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    issued_real: float
    issued_sim: float
    used_at: float | None = None

    def to_dict(self) -> dict:
        return {
            "welcome_code": self.code,
            "userid": self.userid,
            "external_userid": self.external_userid,
            "issued_real": self.issued_real,
            "issued_sim": self.issued_sim,
            "used_at": self.used_at,
        }


# transfer_result statuses
TRANSFER_DONE = 1
TRANSFER_WAITING = 2
TRANSFER_REFUSED = 3
TRANSFER_LIMIT = 4
TRANSFER_NO_RECORD = 5


@dataclass
class Transfer:
    """One customer's hand-over from one rep to another (on the job or after resignation)."""

    id: int
    kind: str  # "onjob" | "resigned"
    handover_userid: str
    takeover_userid: str
    external_userid: str
    requested_at: float
    due_at: float
    status: int = TRANSFER_WAITING
    finished_at: float | None = None
    fail_reason: str = ""
    success_msg: str = ""

    @property
    def takeover_time(self) -> int:
        # While waiting WeCom shows the future automatic takeover time; afterwards, when it ended.
        return int(self.finished_at if self.finished_at is not None else self.due_at)

    def to_result(self) -> dict:
        return {
            "external_userid": self.external_userid,
            "status": self.status,
            "takeover_time": self.takeover_time,
        }

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "handover_userid": self.handover_userid,
            "takeover_userid": self.takeover_userid,
            "external_userid": self.external_userid,
            "requested_at": self.requested_at,
            "due_at": self.due_at,
            "status": self.status,
            "finished_at": self.finished_at,
            "fail_reason": self.fail_reason,
        }


@dataclass
class ChatMember:
    userid: str
    type: int  # 1 corp member, 2 external contact
    join_time: int
    join_scene: int = 1
    invitor: str = ""
    unionid: str = ""
    name: str = ""

    def to_api(self, need_name: bool) -> dict:
        data = {
            "userid": self.userid,
            "type": self.type,
            "join_time": self.join_time,
            "join_scene": self.join_scene,
            "group_nickname": "",
        }
        if self.invitor:
            data["invitor"] = {"userid": self.invitor}
        if self.type == 2 and self.unionid:
            data["unionid"] = self.unionid
        if need_name:
            data["name"] = self.name
        return data


# group chat statuses (groupchat/list status_filter)
CHAT_NORMAL = 0
CHAT_RESIGNED_PENDING = 1
CHAT_RESIGNED_IN_PROGRESS = 2
CHAT_RESIGNED_DONE = 3


@dataclass
class GroupChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    members: list[ChatMember] = field(default_factory=list)
    admin_list: list[str] = field(default_factory=list)
    status: int = CHAT_NORMAL
    version: int = 1

    def member(self, member_id: str) -> ChatMember | None:
        return next((m for m in self.members if m.userid == member_id), None)

    def to_api(self, need_name: bool = False) -> dict:
        return {
            "chat_id": self.chat_id,
            "name": self.name,
            "owner": self.owner,
            "create_time": self.create_time,
            "notice": self.notice,
            "member_list": [m.to_api(need_name) for m in self.members],
            "admin_list": [{"userid": a} for a in self.admin_list],
            "member_version": str(self.version),
        }

    def to_dict(self) -> dict:
        return {**self.to_api(need_name=True), "status": self.status}


@dataclass
class SentMessage:
    """One app message to one member, and what became of it."""

    msgid: str
    userid: str
    msgtype: str
    summary: str
    at: float
    status: str  # "delivered" | "dropped" (rate limit, silently) | "duplicate" (duplicate check)

    def to_dict(self) -> dict:
        return {
            "msgid": self.msgid,
            "userid": self.userid,
            "msgtype": self.msgtype,
            "summary": self.summary,
            "at": self.at,
            "status": self.status,
        }


@dataclass
class Token:
    value: str
    area: str  # "contact" | "agent" | "wechat"
    issued_at: float
    expires_at: float
    revoked: str | None = None  # "invalid" -> 40014/40001, "expired" -> 42001


@dataclass
class OneTimeCode:
    """A short-lived single-use code: OAuth (rep), wx.login (WeChat user) or phone number."""

    code: str
    kind: str  # "oauth" | "jscode" | "phone"
    subject: str  # userid for oauth; external_userid of the WeChat user otherwise
    expires_at: float
    used: bool = False
    phone: str = ""
