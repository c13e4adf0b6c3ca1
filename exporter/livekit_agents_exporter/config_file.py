"""The one strict reader of the project's YAML configuration files, and its one error.

Every configuration file the project reads (the web configuration, the mixin
configuration of the alert pack and the dashboard) goes through ``read_yaml``: a regular
file of at most 1 MiB, UTF-8, safe YAML with duplicate keys refused. A user who gets
something wrong sees one line::

    web.yml: tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'

and never a traceback. ``read_yaml`` turns unreadable files and invalid YAML into
``ConfigError``; ``ConfigMap`` walks a mapping, checks each key's type as it is taken
and, on ``finish()``, refuses keys nobody took with the closest known key (a typo must
not be silently ignored). The web configuration takes typed values from it; the mixin
configuration (``rules.config``) walks its schema with it and checks the values itself.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import yaml

MAX_CONFIG_BYTES = 1 << 20  # a configuration file larger than this is a mistake
_MISSING: Any = object()


class ConfigError(ValueError):
    """A configuration file is wrong; ``str()`` is one line naming the file and the key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        # one line, whatever the YAML parser or a hostile key name put in
        key = key.encode("unicode_escape").decode("ascii") if not key.isprintable() else key
        message = " ".join(message.split())
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


def type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


class _OwnProblem(yaml.constructor.ConstructorError):
    """A problem this module words itself: it names keys, never values, so it is shown."""


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML would silently keep the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise _OwnProblem(
                None, None, "a mapping key must be a plain value, not a list or mapping",
                key_node.start_mark) from None
        if key in seen:
            raise _OwnProblem(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_regular_file(path: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``OSError`` with a clear
    ``strerror`` otherwise. A FIFO, a device or ``/dev/zero`` is refused before any read,
    so a wrong path can neither block the caller nor fill its memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or directory)")
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes; is this the right file?")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes; is this the right file?")
        return data
    finally:
        os.close(fd)


def _no_quotes(text: str) -> str:
    """A YAML parser message without the document's own text (it may be a secret)."""
    return _QUOTED.sub("(text not shown)", text)


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """The parsed document, or ``ConfigError`` for a missing, unreadable or invalid file.

    No message repeats the file's content: a wrong file may be a key or a password list.
    """
    file = os.fspath(path)
    try:
        raw = read_regular_file(file)
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        problem = problem if isinstance(exc, _OwnProblem) else _no_quotes(problem)
        raise ConfigError(file, "", f"invalid YAML{where}: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(file, "", f"invalid YAML: {exc.reason} at position "
                                    f"{exc.position}") from None
    except yaml.YAMLError:
        raise ConfigError(file, "", "invalid YAML") from None
    except RecursionError:
        raise ConfigError(file, "", "invalid YAML: nested too deeply") from None


class ConfigMap:
    """One mapping of a configuration file, read key by key.

    ``take`` returns a checked value and marks the key as known; ``finish`` raises for
    any key left over. ``key`` is the dotted path used in messages.
    """

    def __init__(self, data: Any, file: str, key: str = "") -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(file, key or "(top level)",
                              f"must be a mapping, got {type_name(data)}")
        for name in data:
            if not isinstance(name, str):
                raise ConfigError(file, self._join(key, repr(name)),
                                  f"keys must be strings, got {type_name(name)}")
        self.data, self.file, self.key = data, file, key
        self._taken: set[str] = set()

    @staticmethod
    def _join(prefix: str, name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    def path(self, name: str) -> str:
        return self._join(self.key, name)

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.path(name), message)

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = _MISSING, *,
             check: Callable[[Any], str | None] | None = None, secret: bool = False) -> Any:
        """The value of ``name`` if it has type ``kind`` (and ``check`` returns no message).

        A missing key (or an explicit null) yields ``default``; without a default it is
        an error. Booleans are never accepted as numbers. A ``secret`` value is never
        repeated in a message.
        """
        self._taken.add(name)
        value = self.data.get(name)
        if value is None:
            if default is _MISSING:
                raise self.error(name, "is required")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            wanted = " or ".join(type_name(k()) for k in kinds)
            shown = "" if secret else f" {_short(value)}"
            raise self.error(name, f"must be {wanted}, got {type_name(value)}{shown}")
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(name, problem)
        return value

    def take_str_list(self, name: str) -> list[str]:
        values: list[str] = self.take(name, list, [])
        for i, item in enumerate(values):
            if not isinstance(item, str):
                raise self.error(f"{name}[{i}]", f"must be a string, got {type_name(item)}")
        return values

    def value(self, name: str) -> Any:
        """The value of ``name`` as written (None when missing), for a caller that checks it
        itself (the mixin configuration's schema); marks the key as known."""
        self._taken.add(name)
        return self.data.get(name)

    def section(self, name: str) -> ConfigMap:
        self._taken.add(name)
        return ConfigMap(self.data.get(name), self.file, self.path(name))

    def finish(self, known: Iterable[str] | None = None) -> None:
        """Refuse the first key nobody took, suggesting the closest of ``known`` (default:
        the keys taken)."""
        unknown = [k for k in self.data if k not in self._taken]
        if unknown:
            names = list(known) if known is not None else sorted(self._taken)
            close = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.6)
            hint = (f"; did you mean {close[0]!r}?" if close
                    else f" (known keys here: {', '.join(names) or 'none'})")
            raise self.error(_short(unknown[0]).strip("'"), f"unknown key{hint}")


def one_of(*allowed: str) -> Callable[[Any], str | None]:
    """A ``check`` for ``ConfigMap.take``: the value must be one of ``allowed``."""

    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return f"must be one of {', '.join(allowed)}, got {_short(value)}"

    return check


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
