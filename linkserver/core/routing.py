"""Routing keys from events, and binding keys from LinkServer masks.

A template names parts of the event in braces; the result's dot-separated
words are the routing key (empty words dropped, so a root event's ``{path}``
leaves no empty word). Placeholders:

``{path}``           the context path (``devices.pump7``; empty for the root)
``{event}``          the event name (``overheated``)
``{source}``         the bridge's source name (default ``node<node id>``)
``{category}``       the event's category (``AlertEvent``, ...; see :func:`category_of`)
``{level}``          the level name (``WARNING``)
``{resource_type}``  the name of the context's parent (``devices``; ``root`` at the top)
``{resource_id}``    the context's own name (``pump7``; ``root`` for the root)

Shipped layouts: :data:`DEFAULT` (``{path}.{event}``: a LinkServer mask and
event name become a binding key with :func:`binding_key`) and
:data:`CLOUDSTACK` (``source.category.type.resourceType.resourceId``).
"""

from __future__ import annotations

import string
from collections.abc import Callable

from linkserver.core.categories import Category
from linkserver.core.events import Event
from linkserver.core.paths import compile_mask

DEFAULT = "{path}.{event}"
CLOUDSTACK = "{source}.{category}.{event}.{resource_type}.{resource_id}"
LAYOUTS = {"default": DEFAULT, "cloudstack": CLOUDSTACK}
PLACEHOLDERS = ("path", "event", "source", "category", "level", "resource_type", "resource_id")


class TemplateError(ValueError):
    """A routing template names an unknown placeholder or is malformed."""


def check_template(template: str) -> str:
    """``template`` itself, or a layout name's template; TemplateError naming the problem."""
    template = LAYOUTS.get(template, template)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise TemplateError(f"routing template {template!r} is malformed: {exc}") from None
    unknown = [field for field in fields if field not in PLACEHOLDERS]
    if unknown:
        raise TemplateError(
            f"routing template {template!r} names unknown {', '.join(map(repr, unknown))}; "
            f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)} or a layout: {', '.join(LAYOUTS)}"
        )
    if not fields:
        raise TemplateError(f"routing template {template!r} names nothing of the event")
    return template


def category_of(event: Event) -> str:
    """The event's category (every definition has one; an event stored before categories
    existed has none and counts as usage)."""
    return event.category or Category.USAGE.value


def router(
    template: str, source: str, category: Callable[[Event], str] = category_of, separator: str = "."
) -> Callable[[Event], str]:
    """``event -> routing key`` for ``template`` (checked). ``separator`` joins the words
    (``.`` for AMQP; an MQTT bridge passes ``/``)."""
    template = check_template(template)
    needs_category = "{category}" in template
    if template == DEFAULT:  # the common case, without format()

        def default_key(event: Event) -> str:
            key = f"{event.context}.{event.name}" if event.context else event.name
            return key if separator == "." else key.replace(".", separator)

        return default_key

    def key(event: Event) -> str:
        path = event.context
        parent, _, name = path.rpartition(".")
        text = template.format(
            path=path,
            event=event.name,
            source=source,
            category=category(event) if needs_category else "",
            level=event.level.name,
            resource_type=(parent.rpartition(".")[2] or "root") if path else "root",
            resource_id=name or "root",
        )
        return separator.join(word for word in text.split(".") if word)

    return key


def binding_key(mask: str, event: str = "*") -> str:
    """The AMQP topic binding key of a LinkServer mask and event name for the default
    layout: ``*`` stays ``*`` (one word), ``**`` becomes ``#`` (zero or more words)."""
    compiled = compile_mask(mask)
    words = ["#" if word == "**" else word for word in compiled.segments]
    return ".".join([*words, event])
