"""The admin routes moved to :mod:`mlwright.serve.routes.admin`; this name is kept for code
that imports them from here."""

from mlwright.serve.routes.admin import reload, router

__all__ = ["reload", "router"]
