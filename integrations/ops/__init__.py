"""Operational notifications (DESIGN §11): events an operator should hear about, sent to
``SWITCHYARD_OPS_WEBHOOK_URL`` signed with Standard Webhooks and, optionally, by email to
``SWITCHYARD_OPS_EMAILS``. ``services`` records and sends them, ``conditions`` is the periodic
check of what no single call reveals (dead letters rising, old keys still in use)."""
