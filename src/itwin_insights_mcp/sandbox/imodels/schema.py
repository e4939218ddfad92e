"""The sample iModels' storage: Id64 ids, the ECSchema classes and the ``im_*`` SQLite tables that hold them.

Element and aspect ids are Id64 integers: briefcase id 2 in bits 40+ (``0x20000000001``), except the root Subject
``0x1`` and the dictionary partition ``0x10``. The ECSQL engine reads these tables; ``generators`` fills them.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BRIEFCASE_ID",
    "CLASS_DEFS",
    "CLASS_DEFS_BY_NAME",
    "CLASS_IDS",
    "DICTIONARY_MODEL_ID",
    "ELEMENT_COLUMN_PROPERTIES",
    "ROOT_SUBJECT_ID",
    "SCHEMAS",
    "SCHEMA_ALIASES",
    "ClassDef",
    "PropertyType",
    "class_chain",
    "create_schema",
    "id64",
    "local_id",
    "parse_id64",
]

PropertyType = Literal["String", "Double", "Integer", "Boolean", "Navigation", "Json"]
ClassKind = Literal["element", "aspect"]

# --------------------------------------------------------------------------- ids

BRIEFCASE_ID: Final = 2
ROOT_SUBJECT_ID: Final = 0x1
DICTIONARY_MODEL_ID: Final = 0x10
_MAX_ID64: Final = (1 << 64) - 1
_HEX: Final = re.compile(r"[0-9a-fA-F]{1,16}")


def local_id(sequence: int) -> int:
    """The Id64 integer of the ``sequence``-th id issued by the sandbox briefcase (2)."""
    return (BRIEFCASE_ID << 40) | sequence


def id64(n: int) -> str:
    """Canonical Id64 string: lower-case hex with ``0x`` and no leading zeros; 0 is ``"0"``."""
    if not 0 <= n <= _MAX_ID64:
        raise ValueError(f"{n} is not a valid Id64 value")
    return "0" if n == 0 else f"0x{n:x}"


def parse_id64(s: str) -> int:
    """Parse an Id64 hex string (``0x...``, any case); raises ``ValueError`` otherwise."""
    text = s.strip()
    if text == "0":
        return 0
    if len(text) < 3 or text[:2].lower() != "0x":
        raise ValueError(f"{s!r} is not an Id64 string")
    digits = text[2:]
    if _HEX.fullmatch(digits) is None or int(digits, 16) > _MAX_ID64:
        raise ValueError(f"{s!r} is not an Id64 string")
    return int(digits, 16)


# ----------------------------------------------------------------- ECSchema model

SCHEMAS: Final[tuple[tuple[str, str], ...]] = (
    ("BisCore", "bis"),
    ("Building", "bldg"),
    ("Plumbing", "plmb"),
    ("Site", "site"),
)
SCHEMA_ALIASES: Final = dict(SCHEMAS)


@dataclass(frozen=True)
class ClassDef:
    """One ECClass: id, name, base (``Schema.Class`` or None), kind and the properties it declares."""

    class_id: int
    schema: str
    name: str
    base: str | None
    kind: ClassKind
    properties: tuple[tuple[str, PropertyType], ...] = ()

    @property
    def full_name(self) -> str:
        """``Schema.Class``, the textual ECClassId used on output."""
        return f"{self.schema}.{self.name}"


_S: Final = "String"
_D: Final = "Double"
_I: Final = "Integer"
_B: Final = "Boolean"
_N: Final = "Navigation"
_J: Final = "Json"

CLASS_DEFS: Final[tuple[ClassDef, ...]] = (
    # BisCore: elements
    ClassDef(0x40, "BisCore", "Element", None, "element",
             (("CodeValue", _S), ("UserLabel", _S), ("Model", _N), ("Parent", _N), ("JsonProperties", _J))),
    ClassDef(0x41, "BisCore", "GeometricElement", "BisCore.Element", "element"),
    ClassDef(0x42, "BisCore", "GeometricElement3d", "BisCore.GeometricElement", "element", (("Category", _N),)),
    ClassDef(0x43, "BisCore", "SpatialElement", "BisCore.GeometricElement3d", "element"),
    ClassDef(0x44, "BisCore", "PhysicalElement", "BisCore.SpatialElement", "element"),
    ClassDef(0x45, "BisCore", "SpatialLocationElement", "BisCore.SpatialElement", "element"),
    ClassDef(0x46, "BisCore", "InformationContentElement", "BisCore.Element", "element"),
    ClassDef(0x47, "BisCore", "DefinitionElement", "BisCore.InformationContentElement", "element",
             (("IsPrivate", _B),)),
    ClassDef(0x48, "BisCore", "Category", "BisCore.DefinitionElement", "element",
             (("Description", _S), ("Rank", _I))),
    ClassDef(0x49, "BisCore", "SpatialCategory", "BisCore.Category", "element"),
    ClassDef(0x4A, "BisCore", "InformationReferenceElement", "BisCore.InformationContentElement", "element"),
    ClassDef(0x4B, "BisCore", "Subject", "BisCore.InformationReferenceElement", "element",
             (("Description", _S),)),
    ClassDef(0x4C, "BisCore", "InformationPartitionElement", "BisCore.InformationContentElement", "element",
             (("Description", _S),)),
    ClassDef(0x4D, "BisCore", "PhysicalPartition", "BisCore.InformationPartitionElement", "element"),
    ClassDef(0x4E, "BisCore", "DefinitionPartition", "BisCore.InformationPartitionElement", "element"),
    # BisCore: aspects
    ClassDef(0x60, "BisCore", "ElementAspect", None, "aspect"),
    ClassDef(0x61, "BisCore", "ElementUniqueAspect", "BisCore.ElementAspect", "aspect", (("Element", _N),)),
    ClassDef(0x62, "BisCore", "ElementMultiAspect", "BisCore.ElementAspect", "aspect", (("Element", _N),)),
    # Building
    ClassDef(0x100, "Building", "BuildingElement", "BisCore.PhysicalElement", "element",
             (("Material", _S), ("Level", _S))),
    ClassDef(0x101, "Building", "Wall", "Building.BuildingElement", "element",
             (("Thickness", _D), ("Height", _D), ("IsExternal", _B), ("LoadBearing", _B), ("FireRating", _S))),
    ClassDef(0x102, "Building", "Door", "Building.BuildingElement", "element",
             (("Width", _D), ("Height", _D), ("FireRating", _S), ("Manufacturer", _S), ("OperationType", _S))),
    ClassDef(0x103, "Building", "Window", "Building.BuildingElement", "element",
             (("Width", _D), ("Height", _D), ("Manufacturer", _S), ("GlazingType", _S), ("UValue", _D))),
    ClassDef(0x104, "Building", "Slab", "Building.BuildingElement", "element",
             (("Thickness", _D), ("SlabType", _S), ("FireRating", _S))),
    ClassDef(0x105, "Building", "Column", "Building.BuildingElement", "element",
             (("Width", _D), ("Depth", _D), ("Height", _D), ("Profile", _S))),
    ClassDef(0x106, "Building", "Beam", "Building.BuildingElement", "element",
             (("Width", _D), ("Depth", _D), ("Length", _D), ("Profile", _S))),
    ClassDef(0x107, "Building", "Space", "BisCore.SpatialLocationElement", "element",
             (("Level", _S), ("SpaceType", _S), ("Occupancy", _I), ("FloorArea", _D))),
    ClassDef(0x110, "Building", "FireRatingAspect", "BisCore.ElementUniqueAspect", "aspect",
             (("Rating", _S), ("TestStandard", _S), ("Certified", _B))),
    ClassDef(0x111, "Building", "CostAspect", "BisCore.ElementUniqueAspect", "aspect",
             (("Cost", _D), ("Currency", _S), ("CostCode", _S))),
    ClassDef(0x112, "Building", "MaintenanceRecordAspect", "BisCore.ElementMultiAspect", "aspect",
             (("Date", _S), ("Technician", _S), ("Action", _S), ("Hours", _D))),
    # Plumbing
    ClassDef(0x140, "Plumbing", "DistributionElement", "BisCore.PhysicalElement", "element",
             (("SystemName", _S), ("Material", _S))),
    ClassDef(0x141, "Plumbing", "Pipe", "Plumbing.DistributionElement", "element",
             (("Diameter", _D), ("Length", _D), ("PressureRating", _S))),
    ClassDef(0x142, "Plumbing", "Fitting", "Plumbing.DistributionElement", "element",
             (("FittingType", _S), ("Diameter", _D))),
    ClassDef(0x143, "Plumbing", "Manhole", "Plumbing.DistributionElement", "element",
             (("Diameter", _D), ("Depth", _D), ("CoverType", _S))),
    # Site
    ClassDef(0x180, "Site", "SiteElement", "BisCore.PhysicalElement", "element",
             (("Material", _S), ("Zone", _S))),
    ClassDef(0x181, "Site", "Pavement", "Site.SiteElement", "element",
             (("Thickness", _D), ("SurfaceType", _S))),
    ClassDef(0x182, "Site", "Curb", "Site.SiteElement", "element",
             (("Width", _D), ("Height", _D))),
    ClassDef(0x183, "Site", "LightPole", "Site.SiteElement", "element",
             (("Height", _D), ("Diameter", _D), ("Wattage", _I), ("Manufacturer", _S))),
)  # fmt: skip

#: ``Schema.Class`` -> its definition.
CLASS_DEFS_BY_NAME: Final[dict[str, ClassDef]] = {c.full_name: c for c in CLASS_DEFS}
CLASS_IDS: Final = {name: c.class_id for name, c in CLASS_DEFS_BY_NAME.items()}

#: ECSQL property -> ``im_elements`` column, for the properties not stored in ``props``.
ELEMENT_COLUMN_PROPERTIES: Final[dict[str, str]] = {
    "CodeValue": "code_value",
    "UserLabel": "user_label",
    "Category": "category_id",
    "Model": "model_id",
    "Parent": "parent_id",
}

# ------------------------------------------------------------------------ tables

_DDL: Final = """
CREATE TABLE IF NOT EXISTS im_classes (
    imodel_id    TEXT NOT NULL,
    class_id     INTEGER NOT NULL,
    schema_name  TEXT NOT NULL COLLATE NOCASE,
    schema_alias TEXT NOT NULL COLLATE NOCASE,
    class_name   TEXT NOT NULL COLLATE NOCASE,
    base_class_id INTEGER NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('element', 'aspect')),
    PRIMARY KEY (imodel_id, class_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS im_classes_name ON im_classes (imodel_id, schema_name, class_name);
CREATE TABLE IF NOT EXISTS im_class_properties (
    imodel_id     TEXT NOT NULL,
    class_id      INTEGER NOT NULL,
    property_name TEXT NOT NULL COLLATE NOCASE,
    property_type TEXT NOT NULL
        CHECK (property_type IN ('String', 'Double', 'Integer', 'Boolean', 'Navigation', 'Json')),
    PRIMARY KEY (imodel_id, class_id, property_name)
);
CREATE TABLE IF NOT EXISTS im_elements (
    imodel_id   TEXT NOT NULL,
    id          INTEGER NOT NULL,
    class_id    INTEGER NOT NULL,
    code_value  TEXT NULL,
    user_label  TEXT NULL,
    category_id INTEGER NULL,
    model_id    INTEGER NULL,
    parent_id   INTEGER NULL,
    bbox_low_x  REAL NULL,
    bbox_low_y  REAL NULL,
    bbox_low_z  REAL NULL,
    bbox_high_x REAL NULL,
    bbox_high_y REAL NULL,
    bbox_high_z REAL NULL,
    length      REAL NULL,
    area        REAL NULL,
    volume      REAL NULL,
    props       TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (imodel_id, id)
);
CREATE INDEX IF NOT EXISTS im_elements_class ON im_elements (imodel_id, class_id);
CREATE INDEX IF NOT EXISTS im_elements_category ON im_elements (imodel_id, category_id);
CREATE TABLE IF NOT EXISTS im_aspects (
    imodel_id  TEXT NOT NULL,
    id         INTEGER NOT NULL,
    class_id   INTEGER NOT NULL,
    element_id INTEGER NOT NULL,
    props      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (imodel_id, id)
);
CREATE INDEX IF NOT EXISTS im_aspects_element ON im_aspects (imodel_id, element_id);
"""


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the ``im_*`` tables and indexes if they do not exist."""
    for statement in _DDL.split(";"):
        if statement.strip():
            conn.execute(statement)


def class_chain(conn: sqlite3.Connection, imodel_id: str, class_id: int) -> list[tuple[str, str]]:
    """The class and its bases, most derived first, as ``(schema_name, class_name)`` pairs."""
    chain: list[tuple[str, str]] = []
    current: int | None = class_id
    while current is not None and len(chain) < 64:
        row = conn.execute(
            "SELECT schema_name, class_name, base_class_id FROM im_classes WHERE imodel_id = ? AND class_id = ?",
            (imodel_id, current),
        ).fetchone()
        if row is None:
            break
        chain.append((str(row[0]), str(row[1])))
        current = row[2]
    return chain
