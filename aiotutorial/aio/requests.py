"""A request class with the application's per-request properties, and includes that add such
a property only when the class does not have it already.

Pyramid's ``config.add_request_method(..., reify=True)`` makes a new class for every request
(``apply_properties``): about 2 % of a worker's time on a JSON page. A subclass of ``Request``
with ``reify`` properties costs nothing per request. An include that defines such a name
registers it with ``add_request_method`` only when ``request_factory_provides`` says the class
in use lacks it, so that each include keeps working on its own.
"""

from __future__ import annotations

from typing import Any

from pyramid.interfaces import IRequestFactory

__all__ = ["use_request_class", "request_factory_provides"]

REQUEST_CLASS = "aio.request_class"


def use_request_class(config: Any, request_class: type) -> None:
    """Make ``request_class`` the request factory; call it before the includes (they look)."""
    config.set_request_factory(request_class)
    config.registry[REQUEST_CLASS] = request_class


def request_factory_provides(config: Any, name: str) -> bool:
    """Does the request class the application uses already have ``name``? (The factory is
    registered by a deferred action, so the registry is told directly as well.)"""
    factory = config.registry.get(REQUEST_CLASS) or config.registry.queryUtility(IRequestFactory)
    return factory is not None and hasattr(factory, name)
