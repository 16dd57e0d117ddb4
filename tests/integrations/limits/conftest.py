from tests.integrations.deliveries.conftest import trello_credential  # noqa: F401
from tests.integrations.limits.fixtures import fresh_limits, store  # noqa: F401
