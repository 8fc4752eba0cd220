"""The templates' environment: ``item.name`` on a dict looks the key up first.

The views hand the templates plain dicts (the same ones the JSON answers carry), and the
templates read them as ``item.name``. Jinja2's ``Environment.getattr`` tries the attribute
first, so every such lookup on a dict raised and caught an ``AttributeError`` before it found
the key: 0.5 us a lookup, about 600 of them in the lobby of 40 channels (a sixth of its
worker's CPU). ``getattr`` is the documented point to override (the sandbox does); here a
dict's key comes first and anything else is looked up as Jinja2 does. The one difference: a
dict that has a key named like a dict method (``items``, ``get``...) gives the key's value for
``d.items``; no template calls a method of a dict that has such a key.
"""

from __future__ import annotations

import types
from typing import Any

from jinja2 import Environment
from pyramid.config import Configurator
from pyramid_jinja2 import IJinja2Environment

__all__ = ["dict_first_getattr", "includeme"]

_MISSING = object()


def dict_first_getattr(environment: Environment, obj: Any, attribute: str) -> Any:
    """``environment.getattr``: a dict's key first (no exception raised and caught on the
    way), else the attribute, else the item, as Jinja2 does."""
    if type(obj) is dict:
        value = obj.get(attribute, _MISSING)
        if value is not _MISSING:
            return value
    return Environment.getattr(environment, obj, attribute)


def _install(config: Configurator) -> None:
    for _, environment in config.registry.getUtilitiesFor(IJinja2Environment):
        environment.getattr = types.MethodType(dict_first_getattr, environment)


def includeme(config: Configurator) -> None:
    # After pyramid_jinja2 has made its environments (its actions' orders are lower).
    config.action(("aiotutorial.jinja", "getattr"), _install, args=(config,), order=1000)
