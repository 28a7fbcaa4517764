"""All models, one module per aggregate; importing this package registers every table."""

from .audit import AuditLog
from .base import Base, utcnow
from .corp import Corp
from .customer import Customer, Identity, IdentityType
from .event import CallbackEvent, EventStatus
from .follow import DeletedBy, FollowRelation, FollowStatus, follow_tag
from .groupchat import GroupChat, GroupChatStatus
from .staff import Department, Staff, StaffStatus
from .tag import Tag
from .user import ApiToken, Role, User

__all__ = [
    "ApiToken",
    "AuditLog",
    "Base",
    "CallbackEvent",
    "Corp",
    "Customer",
    "DeletedBy",
    "Department",
    "EventStatus",
    "FollowRelation",
    "FollowStatus",
    "GroupChat",
    "GroupChatStatus",
    "Identity",
    "IdentityType",
    "Role",
    "Staff",
    "StaffStatus",
    "Tag",
    "User",
    "follow_tag",
    "utcnow",
]
