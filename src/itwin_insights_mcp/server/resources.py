"""Resources, resource templates, prompts and argument completion.

- `skill://index` (the manifest) and `skill://<skill>/<path>` for every file of the skills bundle;
- the template `insights://reports/{reportId}/odata/metadata`: a report's OData `$metadata`, read live;
- the template `insights://exports/{fileName}`: files written by export_odata_entity (over HTTP, tools return links);
- prompts for the main workflows, whose report, mapping and iModel arguments complete from the API.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types

from ..api.catalog import Catalog
from ..api.client import InsightsClient
from ..errors import InsightsError
from ..settings import Settings
from .local_tools import export_path
from .skills import load_skills
from .tools import send
from .ui import VIEW_URI, read_view

__all__ = ["PROMPTS", "ResourceProvider"]

METADATA_PREFIX = "insights://reports/"
EXPORT_PREFIX = "insights://exports/"
MAX_EXPORT_READ_BYTES = 10 * 1024 * 1024
MAX_COMPLETIONS = 100


def _argument(name: str, description: str, required: bool = True) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=required)


PROMPTS: dict[str, tuple[types.Prompt, str]] = {
    "quantity_takeoff_report": (
        types.Prompt(
            name="quantity_takeoff_report",
            title="Quantity take-off report",
            description="Build a quantity take-off of an iModel and publish it as an OData report.",
            arguments=[
                _argument("imodelId", "The iModel to take off (list_imodels finds it)."),
                _argument("reportName", "Display name of the report (default 'Quantity take-off').", False),
            ],
        ),
        "Build a quantity take-off report for iModel {imodelId}, named '{reportName}'.\n"
        "Follow the golden path of skill://insights-reporting/SKILL.md: read the iModel's classes first "
        "(skill://insights-ecsql/SKILL.md), create one mapping, one group per element family you find "
        "(walls, slabs, doors, windows, columns, beams, pipes...), map each group's useful properties "
        "(materials, dimensions) and add calculated Volume, Area and Length columns. Run the extraction, "
        "wait_for_extraction until it is done, read the logs if containsIssues, then create the report in the "
        "iModel's iTwin, link the mapping, and check get_odata_service and one page of each table. Finish with "
        "a short table: entity set, row count, columns.",
    ),
    "audit_mapping": (
        types.Prompt(
            name="audit_mapping",
            title="Audit a mapping",
            description="Review a mapping's groups and properties, test-extract it and report what to fix.",
            arguments=[_argument("imodelId", "The mapping's iModel."), _argument("mappingId", "The mapping.")],
        ),
        "Audit mapping {mappingId} of iModel {imodelId}.\n"
        "List its groups and, for each, its group properties, calculated properties and custom calculations. "
        "Check every query against skill://insights-ecsql/SKILL.md and every formula against "
        "skill://insights-formulas/SKILL.md. Run run_extraction with mappings=[{{id: {mappingId}}}], "
        "wait_for_extraction, and read list_extraction_logs. Report, per group: rows extracted, problems found "
        "(failed queries, columns that are always null, duplicate names, unit mix-ups) and the exact fix. "
        "Change nothing without asking.",
    ),
    "refresh_and_check_report": (
        types.Prompt(
            name="refresh_and_check_report",
            title="Refresh and check a report",
            description="Re-extract a report's mappings and check that its OData feed is complete.",
            arguments=[_argument("reportId", "The report to refresh.")],
        ),
        "Refresh report {reportId} and check its feed.\n"
        "get_report, then list_report_mappings. For each iModel in them, run_extraction with those mappings and "
        "wait_for_extraction; read the logs when containsIssues is true. Then get_odata_service and "
        "get_odata_metadata, and read the first page of every entity set. Report each table's columns and row "
        "count (follow @odata.nextLink or use export_odata_entity for the total) and anything that changed.",
    ),
}


class ResourceProvider:
    """Serves resources, prompts and completions from the skills bundle and the live API."""

    def __init__(self, client: InsightsClient, catalog: Catalog, settings: Settings) -> None:
        self._client = client
        self._catalog = catalog
        self._settings = settings

    # -- resources ---------------------------------------------------------------------------------------------

    def list_resources(self) -> list[types.Resource]:
        skills = load_skills()
        resources = [
            types.Resource(
                uri="skill://index",
                name="skills-index",
                title="Insights skills (manifest)",
                description="Every skill, what it is for, and its files.",
                mime_type="application/json",
            )
        ]
        for (skill, path), file in sorted(skills.files.items()):
            resources.append(
                types.Resource(
                    uri=file.uri,
                    name=f"{skill}/{path}",
                    mime_type="text/markdown",
                    size=len(file.text.encode()),
                    description=skills.descriptions.get(skill) if path == "SKILL.md" else None,
                )
            )
        return resources

    def list_templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template=METADATA_PREFIX + "{reportId}/odata/metadata",
                name="report-odata-metadata",
                title="A report's OData $metadata",
                description="The EDMX of a report's OData feed: entity sets and column types.",
                mime_type="application/xml",
            ),
            types.ResourceTemplate(
                uri_template=EXPORT_PREFIX + "{fileName}",
                name="export",
                title="An exported OData table",
                description="A file written by export_odata_entity (CSV or JSON Lines).",
            ),
        ]

    async def read(self, uri: str) -> types.ReadResourceResult:
        """The resource's text; a wrong URI raises ValueError naming what exists."""
        if uri == "skill://index":
            text = json.dumps(load_skills().manifest(), indent=1)
            return _text(uri, text, "application/json")
        if uri.startswith("skill://"):
            try:
                return _text(uri, load_skills().by_uri(uri).text, "text/markdown")
            except KeyError as exc:
                raise ValueError(str(exc.args[0])) from None
        if uri.startswith(METADATA_PREFIX) and uri.endswith("/odata/metadata"):
            report_id = uri.removeprefix(METADATA_PREFIX).removesuffix("/odata/metadata")
            try:
                xml = await self._call("get_odata_metadata", {"reportId": report_id})
            except InsightsError as exc:
                raise ValueError(f"Could not read the metadata of report {report_id}: {exc}") from None
            return _text(uri, str(xml), "application/xml")
        if uri.startswith(EXPORT_PREFIX):
            return _text(uri, self._read_export(uri.removeprefix(EXPORT_PREFIX)), "text/plain")
        if uri == VIEW_URI:
            return read_view()  # the MCP App report view (server/ui.py)
        raise ValueError(
            f"Unknown resource {uri!r}: use skill://index, skill://<skill>/<path>, "
            f"{METADATA_PREFIX}<reportId>/odata/metadata or {EXPORT_PREFIX}<fileName>."
        )

    def _read_export(self, name: str) -> str:
        try:
            path = export_path(self._settings, name)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if not path.is_file():
            raise ValueError(f"No export named {name!r}; export_odata_entity creates it.")
        if path.stat().st_size > MAX_EXPORT_READ_BYTES:
            raise ValueError(f"Export {name!r} is larger than 10 MB; read it from the export directory instead.")
        return path.read_text(encoding="utf-8")

    async def _call(self, tool: str, arguments: dict[str, Any]) -> Any:
        return (await send(self._client, self._catalog[tool], arguments)).body

    # -- prompts -----------------------------------------------------------------------------------------------

    def list_prompts(self) -> list[types.Prompt]:
        return [prompt for prompt, _ in PROMPTS.values()]

    def get_prompt(self, name: str, arguments: dict[str, str]) -> types.GetPromptResult:
        if name not in PROMPTS:
            raise ValueError(f"Unknown prompt {name!r}. Prompts: {', '.join(PROMPTS)}.")
        prompt, template = PROMPTS[name]
        missing = [a.name for a in prompt.arguments or [] if a.required and not arguments.get(a.name)]
        if missing:
            raise ValueError(f"Prompt {name!r} needs: {', '.join(missing)}.")
        values = {"reportName": "Quantity take-off", **arguments}
        text = template.format(**values)
        return types.GetPromptResult(
            description=prompt.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    # -- completion --------------------------------------------------------------------------------------------

    async def complete(self, argument: str, value: str, context: dict[str, str]) -> types.Completion:
        """Ids for reportId, mappingId and imodelId arguments, matching what was typed so far."""
        try:
            if argument == "imodelId":
                candidates = [i["id"] for i in await self._imodels()]
            elif argument == "mappingId":
                imodels = [context["imodelId"]] if context.get("imodelId") else [i["id"] for i in await self._imodels()]
                candidates = []
                for imodel_id in imodels:
                    body = await self._call("list_mappings", {"imodelId": imodel_id, "top": 1000})
                    candidates += [m["id"] for m in body.get("mappings", [])]
            elif argument == "reportId":
                candidates = []
                for itwin in await self._itwins():
                    body = await self._call("list_reports", {"projectId": itwin, "top": 1000})
                    candidates += [r["id"] for r in body.get("reports", [])]
            else:
                candidates = []
        except InsightsError:
            candidates = []
        matching = [c for c in candidates if c.lower().startswith(value.lower())]
        return types.Completion(
            values=matching[:MAX_COMPLETIONS], total=len(matching), has_more=len(matching) > MAX_COMPLETIONS
        )

    async def _itwins(self) -> list[str]:
        body = await self._call("list_itwins", {"top": 100})
        return [i["id"] for i in body.get("iTwins", [])]

    async def _imodels(self) -> list[dict[str, Any]]:
        imodels: list[dict[str, Any]] = []
        for itwin in await self._itwins():
            body = await self._call("list_imodels", {"iTwinId": itwin, "top": 100})
            imodels += body.get("iModels", [])
        return imodels


def _text(uri: str, text: str, mime: str) -> types.ReadResourceResult:
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=text, mime_type=mime)])
