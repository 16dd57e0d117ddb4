"""An HTTP server on a random loopback port, served from a thread of its own, for tests that
need a real peer (subscribers, echoing providers)."""

import threading
from http.server import ThreadingHTTPServer

__all__ = ("LocalHttpServer",)


class LocalHttpServer:
    """Serves ``handler`` on 127.0.0.1; ``url`` is its address plus ``path``."""

    def __init__(self, handler, path: str = ""):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
