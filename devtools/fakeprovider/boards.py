"""The fake Miro's boards: items that can be created, moved and deleted, and listed a cursor page
at a time as docs/providers/miro.md records (``limit`` 10..50, ``cursor``, ``data``, ``size``,
``total``, ``limit``, ``links``; no cursor on the last page). Boards appear empty on first use;
``reset`` empties them all. The cursor is keyset (the last id returned), so a page is stable
while items are created or deleted elsewhere on the board, as a cursor should be."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

__all__ = ("MiroBoards",)

FIRST_ITEM_ID = 3458764600000000000
CURSOR_PREFIX = "fk1."
FAKE_USER = {"id": "3458764517517819000", "type": "user"}


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class MiroBoards:
    def __init__(self):
        self.lock = threading.Lock()
        self.boards: dict[str, dict[str, dict]] = {}
        self._ids = itertools.count(FIRST_ITEM_ID)
        self._last = datetime.now(UTC)

    def reset(self) -> None:
        with self.lock:
            self.boards.clear()

    def _now(self) -> str:
        # Strictly increasing at millisecond precision: two changes never share a modifiedAt.
        moment = max(datetime.now(UTC), self._last + timedelta(milliseconds=1))
        self._last = moment
        return _timestamp(moment)

    def create(self, board: str, data: dict, position: dict | None, parent: dict | None) -> dict:
        with self.lock:
            now = self._now()
            item_id = str(next(self._ids))
            item = {
                "id": item_id,
                "type": "sticky_note",
                "data": {"content": str(data.get("content", "")), "shape": "square"},
                "position": {"x": 0, "y": 0, "origin": "center", **(position or {})},
                "createdAt": now,
                "createdBy": FAKE_USER,
                "modifiedAt": now,
                "modifiedBy": FAKE_USER,
                "links": {"self": f"https://api.miro.com/v2/boards/{board}/items/{item_id}"},
            }
            if parent and parent.get("id"):
                item["parent"] = {"id": str(parent["id"])}
            self.boards.setdefault(board, {})[item_id] = item
            return dict(item)

    def update(self, board: str, item_id: str, changes: dict) -> dict | None:
        with self.lock:
            item = self.boards.get(board, {}).get(item_id)
            if item is None:
                return None
            if isinstance(changes.get("position"), dict):
                item["position"] = {**item["position"], **changes["position"]}
            if isinstance(changes.get("parent"), dict):
                parent_id = changes["parent"].get("id")
                item.pop("parent", None)
                if parent_id and parent_id != "null":
                    item["parent"] = {"id": str(parent_id)}
            if isinstance(changes.get("data"), dict) and "content" in changes["data"]:
                item["data"]["content"] = str(changes["data"]["content"])
            item["modifiedAt"] = self._now()
            return dict(item)

    def delete(self, board: str, item_id: str) -> bool:
        with self.lock:
            return self.boards.get(board, {}).pop(item_id, None) is not None

    def page(self, board: str, limit: int, cursor: str | None) -> dict | None:
        """One page after ``cursor``; None for a cursor this board never gave out."""
        after = -1
        if cursor:
            if not cursor.startswith(CURSOR_PREFIX) or not cursor[len(CURSOR_PREFIX) :].isdigit():
                return None
            after = int(cursor[len(CURSOR_PREFIX) :])
        with self.lock:
            items = sorted(self.boards.get(board, {}).values(), key=lambda i: int(i["id"]))
            rest = [dict(i) for i in items if int(i["id"]) > after]
        data = rest[:limit]
        page = {
            "data": data,
            "total": len(items),
            "size": len(data),
            "limit": limit,
            "links": {"self": f"https://api.miro.com/v2/boards/{board}/items?limit={limit}"},
        }
        if len(rest) > limit:
            page["cursor"] = f"{CURSOR_PREFIX}{data[-1]['id']}"
        return page
