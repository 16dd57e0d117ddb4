from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture_bytes(provider: str, name: str) -> bytes:
    """A payload exactly as stored: never re-serialised, so signatures stay valid."""
    with open(FIXTURES / provider / f"{name}.json", "rb") as handle:
        return handle.read()
