"""Development tools: the fake provider server and the demo data. Installed only with
``SWITCHYARD_DEV_TOOLS`` on (default: ``DEBUG``), so production has neither command."""
