"""`METHODS`, the method registry: `@METHODS.register("name", "one-line description")` on a
`Method` subclass. What the registry knows of a method comes from the class itself (see
`methods.base.Method`); registering checks that it does not collide with another method.
"""
from __future__ import annotations

from bench.core.errors import UsageError
from bench.core.registry import Registry
from methods.base import Method


class MethodRegistry(Registry[type[Method]]):
    """A registry of `Method` classes, listed in their declared `order`, with one baseline."""

    def add(self, name: str, entry: type[Method], description: str = "") -> None:
        if not (isinstance(entry, type) and issubclass(entry, Method)):
            raise TypeError(f"method '{name}' must be a subclass of methods.base.Method")
        entry.name = name
        for other_name in self._entries:
            other = self._entries[other_name]
            if self.display_name(other_name) == (entry.display_name or name):
                raise ValueError(f"method '{name}' has the display name of '{other_name}' "
                                 f"({entry.display_name!r}): give it its own display_name")
            if entry.colour is not None and entry.colour == other.colour:
                raise ValueError(f"method '{name}' has the colour of '{other_name}' ({entry.colour}): "
                                 "give it its own colour")
            if entry.is_baseline and other.is_baseline:
                raise ValueError(f"methods '{other_name}' and '{name}' both declare is_baseline; "
                                 "exactly one method is the baseline")
        super().add(name, entry, description)

    def names(self) -> list[str]:
        return sorted(self._entries, key=lambda name: (self._entries[name].order, name))

    def default_names(self) -> list[str]:
        """The methods a grid runs when it names none (`in_default_grids`), in order."""
        return [name for name in self.names() if self._entries[name].in_default_grids]

    def display_name(self, name: str) -> str:
        """How tables and plots print method `name` (its registry name for unknown methods)."""
        entry = self._entries.get(name)
        return (entry.display_name or name) if entry is not None else name

    def baseline(self) -> str:
        """The name of the method every other is compared against."""
        chosen = [name for name in self.names() if self._entries[name].is_baseline]
        if len(chosen) != 1:
            raise UsageError(f"{len(chosen)} registered methods declare is_baseline; exactly one must")
        return chosen[0]


METHODS = MethodRegistry("method")
