"""A small name -> object registry with 'did you mean' errors (the lm-eval pattern)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bench.core.errors import unknown

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; each entry carries a one-line description for `bench ls`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator: `@REG.register("name", "what it is")`."""

        def add(entry: T) -> T:
            self.add(name, entry, description)
            return entry

        return add

    def add(self, name: str, entry: T, description: str = "") -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        own = getattr(entry, "description", "") if not isinstance(entry, type) else ""
        doc = (getattr(entry, "__doc__", "") or "").strip().split("\n")[0]
        self._descriptions[name] = description or (own if isinstance(own, str) else "") or doc

    def get(self, name: str) -> T:
        """The entry called `name`; a UsageError with a suggestion if there is none."""
        try:
            return self._entries[name]
        except KeyError:
            raise unknown(self.kind, name, self._entries) from None

    def describe(self, name: str) -> str:
        return self._descriptions[name]

    def names(self) -> list[str]:
        """The registered names, in listing order (registration order unless a subclass says otherwise)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
