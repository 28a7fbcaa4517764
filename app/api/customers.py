"""GET /customers and /customers/<id>."""

from app.api.routing import ApiBlueprint, current_principal
from app.schemas.common import page_of
from app.schemas.customer import CustomerDetailSchema, CustomerQuery, CustomerSchema
from app.services import customers

bp = ApiBlueprint("api_customers", __name__, tag="customers")


@bp.operation("/customers", "GET", query=CustomerQuery, response=page_of(CustomerSchema), roles=("admin", "rep"))
def list_customers(query):
    """List the customers you may see, filtered by rep, tag, channel or text."""
    return customers.search(current_principal(), **query)


@bp.operation("/customers/<int:customer_id>", "GET", response=CustomerDetailSchema, roles=("admin", "rep"))
def get_customer(customer_id):
    """One customer with identities, follow relations and tags."""
    return customers.get_detail(current_principal(), customer_id)
