"""The names of the core's own collections (the built-in plugin declares them)."""

CUSTOMERS = "customers"
INTERACTIONS = "interactions"
TASKS = "tasks"
# external ids (``source:id`` as the document id) → customer id; see Customers.by_external_id
CUSTOMER_KEYS = "customer_keys"
