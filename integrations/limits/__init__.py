"""Limits on outbound calls: rate limits, cool-downs, circuit breakers (DESIGN.md §5)."""
