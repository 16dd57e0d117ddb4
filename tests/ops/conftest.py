from tests.integrations.deliveries.conftest import trello_credential  # noqa: F401
from tests.integrations.limits.fixtures import fresh_limits  # noqa: F401
from tests.webhooks.conftest import make_endpoint, post_webhook  # noqa: F401
