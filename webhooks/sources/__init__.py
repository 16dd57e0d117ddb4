"""Events without webhooks: sources Switchyard reads itself, each feeding the receiver's store
path (``webhooks.services.inbound_message_store``: identify, de-duplicate, insert into the
inbound outbox) and nothing else.

``config``      the settings of each source kind, validated, and their destination checks
``transports``  credential-only registry entries for the brokers (``amazon_sqs``, ``amqp``)
``eventbridge`` Shopify's EventBridge envelope → the webhook it carries (docs/providers/)
``consumers``   what every queue consumer shares: the broker secret, store then acknowledge
``sqs``, ``amqp`` the long-running consumers behind ``manage.py consume``
``miro_poll``   Miro boards by polling: pages, marks, deletions (a dispatcher step and a task)

This package imports nothing from here at import time, so services may import ``config``."""
