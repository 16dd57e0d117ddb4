from rest_framework import pagination

__all__ = ("CursorPagination", "PageNumberPagination")


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CursorPagination(pagination.CursorPagination):
    """Stable pagination for logs that grow while being read (deliveries, events)."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500
