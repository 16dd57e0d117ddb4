"""Counting what config.prepared compiles, for tests that a hot path reuses its statements."""

__all__ = ("compiles",)


def compiles(monkeypatch, cls) -> list:
    """What ``cls`` (PreparedRead, PreparedUpdate) compiles from now on, one entry per
    statement."""
    compiled = []
    original = cls._compile

    def counting(self, *args):
        compiled.append(args)
        return original(self, *args)

    monkeypatch.setattr(cls, "_compile", counting)
    return compiled
