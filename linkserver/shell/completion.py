"""Tab completion: commands, options, context paths, event names, fields and filter words.

:meth:`ShellCompleter.suggest` works on the text before the cursor and
returns plain :class:`Suggestion` tuples (tests call it directly);
``get_completions`` wraps them for prompt-toolkit. Context lookups go
through the shell's :class:`~linkserver.shell.commands.ContextCache`, so
repeated Tabs cost no request; a lookup that fails offers nothing rather
than raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from linkserver.client.values import field_labels
from linkserver.core.levels import Level
from linkserver.shell.commands import ALIASES, COMMANDS, Command, Shell, resolve

OPERANDS = ("context", "name", "level", "group", "author", "category", "created", "id")
KEYWORDS = ("and", "or", "not", "in")
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
TIMES = ("today", "yesterday", "now", "15m", "1h", "24h", "7d")
_FRAGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")
_AFTER_VALUE = re.compile(r"""(["')\]]|[A-Za-z0-9_.]+)\s+$""")
_LEVEL_OPERATOR = re.compile(r"\blevel\s*(==|!=|<=|>=|<|>)\s*$|\blevel\s+(not\s+)?in\s*\[[^\]]*$", re.I)
_STARTS_TERM = re.compile(r"(^|\(|\b(and|or|not)\s)\s*$", re.I)


class Suggestion(NamedTuple):
    text: str  # replaces the last ``-start`` characters before the cursor
    start: int  # <= 0
    display: str = ""
    meta: str = ""


def split_partial(text: str) -> tuple[list[str], str, str, bool]:
    """``(finished words, current word, its raw text, inside quotes)`` of the last command."""
    words: list[str] = []
    current, raw, quote, started = "", "", None, False
    for char in text:
        if quote:
            raw += char
            if char == quote:
                quote = None
            else:
                current += char
        elif char in "\"'":
            quote, started, raw = char, True, raw + char
        elif char.isspace():
            if started:
                words.append(current)
            current, raw, started = "", "", False
        elif char == ";":
            words, current, raw, started = [], "", "", False
        else:
            current, raw, started = current + char, raw + char, True
    return words, current, raw, quote is not None


class ShellCompleter(Completer):
    """Completions for one :class:`Shell` (its current context, cache and recent event ids)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        try:
            suggestions = self.suggest(document.text_before_cursor)
        except Exception:  # noqa: BLE001 - completion must never break the prompt
            return
        for s in suggestions:
            yield Completion(s.text, start_position=s.start, display=s.display or None, display_meta=s.meta)

    # -- what to offer ---------------------------------------------------------------

    def suggest(self, text: str) -> list[Suggestion]:
        words, current, raw, quoted = split_partial(text)
        if not words:
            names = [*COMMANDS, *ALIASES]
            return [
                Suggestion(n, -len(raw), n, COMMANDS[ALIASES.get(n, n)].summary)
                for n in sorted(names)
                if n.startswith(current)
            ]
        cmd = COMMANDS.get(ALIASES.get(words[0], words[0]))
        if cmd is None:
            return []
        option = cmd.option(words[-1]) if len(words) > 1 else None
        if option is not None and option.kind != "flag":
            return self._value(option.kind, cmd, self._positionals(cmd, words), current, raw, quoted)
        if current.startswith("-") and not quoted:
            used = set(words)
            return [
                Suggestion(a.name, -len(raw), a.name, a.help)
                for a in cmd.args
                if a.name.startswith(current) and a.name.startswith("-") and a.name not in used
            ]
        positionals = self._positionals(cmd, words)
        specs = cmd.positionals()
        if len(positionals) < len(specs):
            spec = specs[len(positionals)]
        elif specs and specs[-1].nargs == "*":
            spec = specs[-1]
        else:
            return []
        return self._value(spec.kind, cmd, positionals, current, raw, quoted)

    @staticmethod
    def _positionals(cmd: Command, words: Sequence[str]) -> list[str]:
        found, skip = [], False
        for word in words[1:]:
            if skip:
                skip = False
            elif word.startswith("-"):
                option = cmd.option(word)
                skip = option is not None and option.kind != "flag"
            else:
                found.append(word)
        return found

    def _value(
        self, kind: str, cmd: Command, positionals: list[str], current: str, raw: str, quoted: bool
    ) -> list[Suggestion]:
        start = -len(raw)
        if kind in ("path", "mask"):
            return self.paths(current, start, masks=kind == "mask")
        if kind == "event":
            return self.events(cmd, positionals, current, start)
        if kind == "assign":
            return self.fields(positionals, current, start)
        if kind == "command":
            return _matching(COMMANDS, current, start)
        if kind == "level":
            return [
                Suggestion(lv.name, start, lv.name) for lv in Level if lv.name.startswith(current.upper())
            ]
        if kind == "id":
            return _matching([str(i) for i in self.shell.recent_ids], current, start)
        if kind == "time":
            return _matching(TIMES, current, start)
        if kind == "filter":
            return self.filter_words(current, self._filter_fields(cmd, positionals))
        return []

    def paths(self, current: str, start: int, *, masks: bool = False) -> list[Suggestion]:
        """Children of the context the text so far names, keeping the text's own form."""
        head, sep, rest = current.rpartition("/")
        if rest in (".", ".."):
            up = head + sep + "../"
            return [Suggestion(up, start, up, "the parent")] if self.shell.cwd or head else []
        parent_text, dot, partial = rest.rpartition(".")
        stem = head + sep + parent_text + dot
        if "*" in stem:
            return []
        try:
            parent = resolve(self.shell.cwd, head + sep + parent_text)
        except ValueError:
            return []
        found = self.shell.contexts.find(parent)
        children = sorted((found or {}).get("children") or ())
        out = [Suggestion(stem + c, start, c, "context") for c in children if c.startswith(partial)]
        if masks:
            out += [Suggestion(stem + w, start, w, "mask") for w in ("*", "**") if w.startswith(partial)]
        if current == "":
            out += [Suggestion("../", start, "../", "the parent")] if self.shell.cwd else []
            out.append(Suggestion("/", start, "/", "the root"))
        return out

    def _definitions(self, path: str) -> list[Mapping[str, Any]]:
        return list((self.shell.contexts.find(path) or {}).get("events") or ())

    def _scope(self, cmd: Command, positionals: Sequence[str]) -> str:
        """The context whose definitions apply: the literal mask of history/watch, else here."""
        if cmd.positionals() and cmd.positionals()[0].kind == "mask" and positionals:
            mask = positionals[0]
            try:
                return resolve(self.shell.cwd, mask.split("*")[0].rstrip("./") if "*" in mask else mask)
            except ValueError:
                return self.shell.cwd
        return self.shell.cwd

    def events(self, cmd: Command, positionals: Sequence[str], current: str, start: int) -> list[Suggestion]:
        prefix, slash, partial = current.rpartition("/")
        if slash:
            try:
                path = resolve(self.shell.cwd, prefix or "/")
            except ValueError:
                return []
        else:
            path = self._scope(cmd, positionals)
        out = [
            Suggestion(prefix + slash + str(d["name"]), start, str(d["name"]), d.get("description") or "")
            for d in sorted(self._definitions(path), key=lambda d: str(d.get("name")))
            if str(d.get("name")).startswith(partial)
        ]
        if cmd.name == "watch" and "*".startswith(current):
            out.append(Suggestion("*", start, "*", "every non-hidden event"))
        return out

    def _definition(self, reference: str) -> Mapping[str, Any] | None:
        path_text, _, name = reference.rpartition("/")
        try:
            path = resolve(self.shell.cwd, path_text) if path_text else self.shell.cwd
        except ValueError:
            return None
        return self.shell.contexts.definition(path, name)

    def fields(self, positionals: Sequence[str], current: str, start: int) -> list[Suggestion]:
        """``field=`` names of the event being fired, then its allowed values and labels after ``=``
        (a label with a space or a quote character quoted; one holding ``'`` is left out)."""
        if not positionals:
            return []
        definition = self._definition(positionals[0])
        fields = ((definition or {}).get("format") or {}).get("fields") or ()
        key, eq, value = current.partition("=")
        if eq:
            field = next((f for f in fields if f.get("name") == key), None)
            if field is None:
                return []
            kind = str(field.get("type"))
            choices = [(str(v), kind) for v in field.get("allowed") or ()]
            if field.get("type") == "boolean":
                choices += [("true", kind), ("false", kind)]
            if field.get("nullable"):
                choices.append(("null", kind))
            choices += [
                (label, f"label of {code}") for code, label in field_labels(field) if "'" not in label
            ]
            return [
                Suggestion(f"{key}={_quoted(c)}", start, c, meta)
                for c, meta in choices
                if c.startswith(value)
            ]
        used = {p.partition("=")[0] for p in positionals[1:]}
        return [
            Suggestion(
                f"{f['name']}=", start, f"{f['name']}=", f"{f.get('type')}: {f.get('description') or ''}"
            )
            for f in fields
            if str(f.get("name")).startswith(key) and f.get("name") not in used
        ]

    def _filter_fields(self, cmd: Command, positionals: Sequence[str]) -> list[str]:
        path = self._scope(cmd, positionals)
        definitions = self._definitions(path)
        if len(positionals) > 1 and positionals[1] != "*":
            definitions = [d for d in definitions if d.get("name") == positionals[1]]
        names: list[str] = []
        for d in definitions:
            for f in (d.get("format") or {}).get("fields") or ():
                names += _field_names(f)
        return sorted(set(names))

    @staticmethod
    def filter_words(text: str, fields: Iterable[str] = ()) -> list[Suggestion]:
        """Operands, ``data.FIELD``, keywords and (after ``level`` and an operator) level names."""
        match = _FRAGMENT.search(text)
        fragment = match.group(0) if match else ""
        before = text[: len(text) - len(fragment)]
        start = -len(fragment)
        if _LEVEL_OPERATOR.search(before):
            words: Iterable[str] = [lv.name for lv in Level]
            return [Suggestion(w, start, w, "level") for w in words if w.startswith(fragment.upper())]
        if before.strip() and not _STARTS_TERM.search(before):
            if _AFTER_VALUE.search(before) and not before.rstrip().endswith(COMPARISONS):
                return _matching(("and", "or", "in", "not"), fragment, start, "keyword")
            return []
        operands = [*OPERANDS, *(f"data.{f}" for f in fields), "not"]
        return _matching(operands, fragment, start, "operand")


def _quoted(text: str) -> str:
    """``text`` as one word of a command line (labels may hold spaces)."""
    return text if text and not any(c.isspace() or c in "\"';" for c in text) else f"'{text}'"


def _field_names(field: Mapping[str, Any], prefix: str = "") -> list[str]:
    name = prefix + str(field.get("name"))
    nested = field.get("format")
    inner = (nested or {}).get("fields") or () if isinstance(nested, Mapping) else ()
    return [name] + [n for f in inner for n in _field_names(f, name + ".")]


def _matching(words: Iterable[str], current: str, start: int, meta: str = "") -> list[Suggestion]:
    return [Suggestion(w, start, w, meta) for w in words if w.startswith(current)]
