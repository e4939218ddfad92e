"""The sandbox's discovery records: its iTwin, its two sample iModels, their changesets and named versions.

The fixed records the iTwins and iModels emulation serves, with uuid5 ids that never change; ``kind``,
``elements`` and ``seed`` say how ``generators`` fills each iModel.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Final, Literal

from .schema import BRIEFCASE_ID

__all__ = [
    "SANDBOX_IMODELS",
    "SANDBOX_ITWINS",
    "SANDBOX_NAMESPACE",
    "SANDBOX_USER_ID",
    "IModelKind",
    "SandboxChangeset",
    "SandboxIModel",
    "SandboxITwin",
    "SandboxNamedVersion",
    "changesets_for",
    "named_versions_for",
]

IModelKind = Literal["building", "site"]

# ------------------------------------------------------------- discovery records

SANDBOX_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/itwin-insights-mcp/sandbox")


def _guid(name: str) -> str:
    return str(uuid.uuid5(SANDBOX_NAMESPACE, name))


SANDBOX_USER_ID: Final = _guid("user:sandbox")


@dataclass(frozen=True)
class SandboxITwin:
    """An iTwin as the iTwins API returns it (representation form)."""

    id: str
    class_: str
    sub_class: str
    type: str | None
    number: str
    display_name: str
    status: str
    data_center_location: str
    geographic_location: str | None
    latitude: float | None
    longitude: float | None
    iana_time_zone: str | None
    created_date_time: str
    created_by: str
    last_modified_date_time: str
    last_modified_by: str
    parent_id: str | None = None
    itwin_account_id: str | None = None
    image_name: str | None = None
    image: str | None = None

    def to_wire(self) -> dict[str, object]:
        """The JSON object of ``GET /itwins/{id}`` (inside ``{"iTwin": ...}``)."""
        return {
            "id": self.id,
            "class": self.class_,
            "subClass": self.sub_class,
            "type": self.type,
            "number": self.number,
            "displayName": self.display_name,
            "geographicLocation": self.geographic_location,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "ianaTimeZone": self.iana_time_zone,
            "dataCenterLocation": self.data_center_location,
            "status": self.status,
            "parentId": self.parent_id,
            "iTwinAccountId": self.itwin_account_id,
            "imageName": self.image_name,
            "image": self.image,
            "createdDateTime": self.created_date_time,
            "createdBy": self.created_by,
            "lastModifiedDateTime": self.last_modified_date_time,
            "lastModifiedBy": self.last_modified_by,
        }


@dataclass(frozen=True)
class SandboxIModel:
    """An iModel as the iModels API returns it, plus the generator inputs (kind, elements, seed)."""

    id: str
    display_name: str
    name: str
    description: str | None
    created_date_time: str
    last_changeset_push_date_time: str | None
    itwin_id: str
    kind: IModelKind
    elements: int
    seed: int
    state: str = "initialized"
    is_secured: bool = False
    containers_enabled: int = 0
    data_center_location: str = "East US"

    def to_wire(self) -> dict[str, object]:
        """The JSON object of ``GET /imodels/{id}`` without ``_links`` (the API layer adds them)."""
        return {
            "id": self.id,
            "displayName": self.display_name,
            "name": self.name,
            "description": self.description,
            "state": self.state,
            "createdDateTime": self.created_date_time,
            "lastChangesetPushDateTime": self.last_changeset_push_date_time,
            "iTwinId": self.itwin_id,
            "isSecured": self.is_secured,
            "extent": None,
            "containersEnabled": self.containers_enabled,
            "dataCenterLocation": self.data_center_location,
        }


@dataclass(frozen=True)
class SandboxChangeset:
    """A changeset (full form) of a sandbox iModel."""

    id: str
    index: int
    parent_id: str
    description: str
    push_date_time: str
    containing_changes: int
    file_size: int
    imodel_id: str
    briefcase_id: int = BRIEFCASE_ID
    creator_id: str = SANDBOX_USER_ID
    state: str = "fileUploaded"
    application_id: str = "sandbox-synchronizer"
    application_name: str = "iTwin Insights Sandbox"

    @property
    def display_name(self) -> str:
        """The API's ``displayName``: the index as a string."""
        return str(self.index)

    def to_wire(self) -> dict[str, object]:
        """The JSON object of ``GET /imodels/{id}/changesets/{cs}`` without ``_links``."""
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "index": self.index,
            "parentId": self.parent_id,
            "creatorId": self.creator_id,
            "pushDateTime": self.push_date_time,
            "state": self.state,
            "containingChanges": self.containing_changes,
            "fileSize": self.file_size,
            "briefcaseId": self.briefcase_id,
            "groupId": None,
            "application": {"id": self.application_id, "name": self.application_name},
            "synchronizationInfo": None,
        }


@dataclass(frozen=True)
class SandboxNamedVersion:
    """A named version of a sandbox iModel (full form)."""

    id: str
    name: str
    description: str | None
    changeset_id: str
    changeset_index: int
    created_date_time: str
    imodel_id: str
    state: str = "visible"

    def to_wire(self) -> dict[str, object]:
        """The JSON object of ``GET /imodels/{id}/namedversions/{nv}`` without ``_links``."""
        return {
            "id": self.id,
            "displayName": self.name,
            "name": self.name,
            "description": self.description,
            "changesetId": self.changeset_id,
            "changesetIndex": self.changeset_index,
            "createdDateTime": self.created_date_time,
            "state": self.state,
            "application": None,
        }


_ITWIN_ID: Final = _guid("itwin:sandbox-project")

SANDBOX_ITWINS: Final[tuple[SandboxITwin, ...]] = (
    SandboxITwin(
        id=_ITWIN_ID,
        class_="Endeavor",
        sub_class="Project",
        type="Construction Project",
        number="SBX-0001",
        display_name="Sandbox Project",
        status="Active",
        data_center_location="East US",
        geographic_location="Exton, PA, USA",
        latitude=40.0290,
        longitude=-75.6210,
        iana_time_zone="America/New_York",
        created_date_time="2024-01-08T09:00:00.0000000Z",
        created_by=SANDBOX_USER_ID,
        last_modified_date_time="2024-01-08T09:00:00.0000000Z",
        last_modified_by=SANDBOX_USER_ID,
    ),
)

_BUILDING_IMODEL_ID: Final = _guid("imodel:sample-office-building")
_SITE_IMODEL_ID: Final = _guid("imodel:sample-site-utilities")

# (description, containingChanges, fileSize, pushDateTime) per changeset, index order.
_ChangesetSpec = tuple[str, int, int, str]
_CHANGESET_SPECS: Final[dict[str, tuple[_ChangesetSpec, ...]]] = {
    _BUILDING_IMODEL_ID: (
        ("Import BisCore, Building and Plumbing schemas", 1, 48_213, "2024-01-15T10:02:11.4370000+00:00"),
        ("Architecture model: walls, slabs, doors, windows", 0, 1_873_554, "2024-01-22T14:31:05.1200000+00:00"),
        ("Structure model: columns and beams", 0, 412_960, "2024-02-05T08:47:39.9050000+00:00"),
        ("Plumbing model: pipes and fittings", 0, 287_411, "2024-02-19T16:12:52.3300000+00:00"),
        ("Rooms, fire ratings and cost data", 0, 356_078, "2024-03-04T11:25:18.0610000+00:00"),
    ),
    _SITE_IMODEL_ID: (
        ("Import BisCore, Plumbing and Site schemas", 1, 51_007, "2024-02-01T09:15:44.2000000+00:00"),
        ("Storm, sanitary and water networks", 0, 198_332, "2024-02-12T13:40:27.7500000+00:00"),
        ("Paving, curbs and site lighting", 0, 97_615, "2024-02-26T15:05:03.0880000+00:00"),
    ),
}


def _changeset_id(imodel_id: str, index: int) -> str:
    return hashlib.sha1(f"{imodel_id}:changeset:{index}".encode(), usedforsecurity=False).hexdigest()


def _build_changesets(imodel_id: str) -> tuple[SandboxChangeset, ...]:
    result: list[SandboxChangeset] = []
    parent = ""
    for index, (description, changes, size, pushed) in enumerate(_CHANGESET_SPECS[imodel_id], start=1):
        cs = SandboxChangeset(
            id=_changeset_id(imodel_id, index),
            index=index,
            parent_id=parent,
            description=description,
            push_date_time=pushed,
            containing_changes=changes,
            file_size=size,
            imodel_id=imodel_id,
        )
        result.append(cs)
        parent = cs.id
    return tuple(result)


_CHANGESETS: Final[dict[str, tuple[SandboxChangeset, ...]]] = {
    imodel_id: _build_changesets(imodel_id) for imodel_id in _CHANGESET_SPECS
}


def _last_push_z(imodel_id: str) -> str:
    """The last changeset's push time in the iModel entity's ``...Z`` spelling (same instant)."""
    return _CHANGESETS[imodel_id][-1].push_date_time.replace("+00:00", "Z")


SANDBOX_IMODELS: Final[tuple[SandboxIModel, ...]] = (
    SandboxIModel(
        id=_BUILDING_IMODEL_ID,
        display_name="Sample Office Building",
        name="Sample Office Building",
        description="Eight-storey office building: architecture, structure, plumbing and rooms.",
        created_date_time="2024-01-15T09:30:00.0000000Z",
        last_changeset_push_date_time=_last_push_z(_BUILDING_IMODEL_ID),
        itwin_id=_ITWIN_ID,
        kind="building",
        elements=3000,
        seed=0,
    ),
    SandboxIModel(
        id=_SITE_IMODEL_ID,
        display_name="Sample Site Utilities",
        name="Sample Site Utilities",
        description="Site around the office building: drainage, sewer and water networks, paving, lighting.",
        created_date_time="2024-02-01T08:45:00.0000000Z",
        last_changeset_push_date_time=_last_push_z(_SITE_IMODEL_ID),
        itwin_id=_ITWIN_ID,
        kind="site",
        elements=400,
        seed=0,
    ),
)


def changesets_for(imodel_id: str) -> tuple[SandboxChangeset, ...]:
    """The changesets of a sandbox iModel in index order (empty for an unknown id)."""
    return _CHANGESETS.get(imodel_id.lower(), ())


def named_versions_for(imodel_id: str) -> tuple[SandboxNamedVersion, ...]:
    """One visible named version on the latest changeset of a sandbox iModel (empty if unknown)."""
    changesets = changesets_for(imodel_id)
    if not changesets:
        return ()
    last = changesets[-1]
    return (
        SandboxNamedVersion(
            id=_guid(f"namedversion:{last.imodel_id}:{last.index}"),
            name="Design Review 1",
            description="Baseline for quantity take-off.",
            changeset_id=last.id,
            changeset_index=last.index,
            created_date_time=last.push_date_time.replace("+00:00", "Z"),
            imodel_id=last.imodel_id,
        ),
    )
