"""Which tools a server (or one HTTP request) exposes: toolsets, single tools, exclusions and read-only.

Filter order, documented and tested: start from the chosen toolsets (all when neither toolsets nor tools are
given), add `tools`, remove `exclude_tools`, then drop every write when read-only. So exclude wins over include and
read-only wins over both. Per-request narrowing intersects with the server's selection and can never widen it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from ..api.catalog import Catalog
from ..errors import ConfigError

__all__ = ["HEADER_EXCLUDE", "HEADER_READ_ONLY", "HEADER_TOOLS", "HEADER_TOOLSETS", "ToolSelection"]

HEADER_TOOLSETS = "x-mcp-toolsets"
HEADER_TOOLS = "x-mcp-tools"
HEADER_EXCLUDE = "x-mcp-exclude-tools"
HEADER_READ_ONLY = "x-mcp-read-only"


# Tools of this toolset are present whatever toolsets are chosen; only --exclude-tools removes them.
CORE_TOOLSET = "core"


class Selectable(Protocol):
    """What selection needs to know of a tool (catalog operations and local tools both qualify)."""

    @property
    def tool(self) -> str: ...
    @property
    def toolset(self) -> str: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def deprecated(self) -> bool: ...
    @property
    def method(self) -> str: ...
    @property
    def full_path(self) -> str: ...


def _names(value: str | Iterable[str] | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(item.strip() for item in items if item.strip())


@dataclass(frozen=True)
class ToolSelection:
    """A filter over catalog operations; `toolsets=None` means every toolset."""

    toolsets: frozenset[str] | None = None
    tools: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    read_only: bool = False
    include_deprecated: bool = False
    parent: ToolSelection | None = None  # a per-request selection narrows its server's

    @classmethod
    def build(
        cls,
        *,
        toolsets: str | Iterable[str] | None = None,
        tools: str | Iterable[str] | None = None,
        exclude: str | Iterable[str] | None = None,
        read_only: bool = False,
        include_deprecated: bool = False,
    ) -> ToolSelection:
        chosen = _names(toolsets)
        picked = _names(tools)
        if "all" in chosen:
            chosen_sets: frozenset[str] | None = None
        elif chosen:
            chosen_sets = chosen
        else:
            chosen_sets = frozenset() if picked else None  # --tools alone means only those tools
        return cls(chosen_sets, picked, _names(exclude), read_only, include_deprecated)

    def validate(self, catalog: Catalog, local: Iterable[Selectable] = ()) -> ToolSelection:
        """Refuse unknown toolset or tool names at start-up, listing the valid ones."""
        local = list(local)
        known_sets = set(catalog.toolsets) | {t.toolset for t in local} - {CORE_TOOLSET}
        bad_sets = (self.toolsets or frozenset()) - known_sets
        if bad_sets:
            raise ConfigError(
                f"Unknown toolset(s): {', '.join(sorted(bad_sets))}. Valid: all, {', '.join(sorted(known_sets))}."
            )
        known_tools = {op.tool for op in catalog} | {t.tool for t in local}
        bad_tools = (self.tools | self.exclude) - known_tools
        if bad_tools:
            raise ConfigError(
                f"Unknown tool(s): {', '.join(sorted(bad_tools))}. Run `itwin-insights-mcp tools` for the list."
            )
        return self

    def allows(self, op: Selectable) -> bool:
        if self.parent is not None and not self.parent.allows(op):
            return False
        if op.deprecated and not self.include_deprecated and op.tool not in self.tools:
            return False
        extra = getattr(op, "also_in", ())  # a local tool may belong to several toolsets
        selected = self.toolsets is None or op.toolset == CORE_TOOLSET or op.toolset in self.toolsets
        selected = selected or bool(set(extra) & (self.toolsets or set()))
        selected = selected or op.tool in self.tools
        if not selected or op.tool in self.exclude:
            return False
        return not (self.read_only and not op.read_only)

    def why_not(self, op: Selectable) -> str:
        """The rule that hides `op`, phrased for the agent."""
        if self.parent is not None and not self.parent.allows(op):
            return self.parent.why_not(op)
        if self.parent is not None:
            return f"Tool `{op.tool}` is not among the tools this request selected (X-MCP-* headers)."
        if self.read_only and not op.read_only:
            return (
                f"Tool `{op.tool}` writes ({op.method} {op.full_path}) and this server runs read-only "
                "(--read-only / ITWIN_INSIGHTS_READ_ONLY). Ask the user to restart it without read-only to write."
            )
        if op.tool in self.exclude:
            return f"Tool `{op.tool}` is excluded by this server's configuration (--exclude-tools)."
        if op.deprecated and not self.include_deprecated:
            instead = getattr(op, "replaced_by", None)  # the catalog's x-mcp.replacedBy
            return f"Tool `{op.tool}` is deprecated and not enabled" + (
                f"; use `{instead}` instead." if instead else "."
            )
        return (
            f"Tool `{op.tool}` belongs to toolset `{op.toolset}`, which this server does not expose "
            "(--toolsets / --tools)."
        )

    def narrowed_by(self, headers: Mapping[str, str]) -> ToolSelection:
        """This selection further restricted by per-request headers; never wider than before."""
        toolsets, tools = headers.get(HEADER_TOOLSETS), headers.get(HEADER_TOOLS)
        exclude = headers.get(HEADER_EXCLUDE)
        read_only = headers.get(HEADER_READ_ONLY, "").strip().lower() in ("1", "true", "yes")
        if not (toolsets or tools or exclude or read_only):
            return self
        request = ToolSelection.build(
            toolsets=toolsets,
            tools=tools,
            exclude=exclude,
            read_only=read_only,
            include_deprecated=self.include_deprecated,
        )
        return replace(request, parent=self)
