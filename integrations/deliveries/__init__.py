"""The delivery engine: calls internal apps ask Switchyard to make to providers.

``prepare`` validates and routes a call when it is accepted; ``services`` accept, attempt,
settle and control deliveries over the shared outbox (integrations/outbox); ``send`` makes one
attempt's HTTP call and classifies it, ``masking`` keeps secrets out of what is stored, and
``retry`` is the backoff policy. ``models``, ``selectors``, ``api``, ``admin``, ``tasks``,
``metrics`` and ``replays`` are its tables, reads and entry points."""
