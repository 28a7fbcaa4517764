"""GET /staff."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.common import page_of
from app.schemas.staff import StaffQuery, StaffSchema
from app.services import staff

bp = ApiBlueprint("api_staff", __name__, tag="staff")


@bp.operation("/staff", "GET", query=StaffQuery, response=page_of(StaffSchema))
def list_staff(query):
    """List staff, filtered by status, department or text."""
    return staff.search(current_principal(), **query)
