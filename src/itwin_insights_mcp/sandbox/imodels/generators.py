"""The sample iModels' deterministic generators: a building and a site, written into the ``im_*`` tables.

Invariants later code relies on (documented in ``docs/sample-imodels.md``):

* the generator is a pure function of ``(kind, elements, seed)``: same input, same rows,
  same ids, on every machine and Python version;
* ids are allocated from one sequence in insertion order (``schema.local_id``);
* a model id is the id of its partition element (as in BIS), so ``Model.CodeValue``
  resolves through ``im_elements`` like ``Category.CodeValue`` does;
* ``length``/``area``/``volume`` are exact functions of the stored box or cylinder
  dimensions (see ``box_measures`` and ``cylinder_measures``).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

from .records import SANDBOX_IMODELS, IModelKind
from .schema import (
    CLASS_DEFS,
    CLASS_IDS,
    DICTIONARY_MODEL_ID,
    ROOT_SUBJECT_ID,
    SCHEMA_ALIASES,
    create_schema,
    local_id,
)

__all__ = [
    "LengthRule",
    "box_measures",
    "cylinder_measures",
    "ensure_sample_imodels",
    "generate_imodel",
    "generate_site_imodel",
    "planned_counts",
    "storey_count",
]

LengthRule = Literal["longest_edge", "largest_face_perimeter", "footprint_perimeter"]


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one transaction, or inside the caller's if one is already open."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


# ---------------------------------------------------------------------- geometry


def box_measures(dx: float, dy: float, dz: float, rule: LengthRule) -> tuple[float, float, float]:
    """(length, area, volume) of an axis-aligned box; area is the full surface area.

    ``rule`` picks the length: the longest edge (linear members), the perimeter of the
    largest face (planar members) or the perimeter of the XY footprint (rooms).
    """
    if rule == "longest_edge":
        length = max(dx, dy, dz)
    elif rule == "largest_face_perimeter":
        a, b, _ = sorted((dx, dy, dz), reverse=True)
        length = 2.0 * (a + b)
    else:
        length = 2.0 * (dx + dy)
    return length, 2.0 * (dx * dy + dy * dz + dx * dz), dx * dy * dz


def cylinder_measures(diameter: float, axis_length: float) -> tuple[float, float, float]:
    """(length, area, volume) of a closed cylinder: axis length, 2πrL + 2πr², πr²L."""
    r = diameter / 2.0
    return axis_length, 2.0 * math.pi * r * axis_length + 2.0 * math.pi * r * r, math.pi * r * r * axis_length


# -------------------------------------------------------------------- the plan

# Share of the geometric elements per class, in per-mille (sums to 1000).
_MIX: Final[dict[IModelKind, tuple[tuple[str, int], ...]]] = {
    "building": (
        ("Building.Wall", 280),
        ("Building.Door", 100),
        ("Building.Window", 120),
        ("Building.Slab", 40),
        ("Building.Column", 60),
        ("Building.Beam", 100),
        ("Plumbing.Pipe", 140),
        ("Plumbing.Fitting", 60),
        ("Building.Space", 100),
    ),
    "site": (
        ("Plumbing.Pipe", 400),
        ("Plumbing.Fitting", 150),
        ("Plumbing.Manhole", 100),
        ("Site.Pavement", 100),
        ("Site.Curb", 150),
        ("Site.LightPole", 100),
    ),
}

# Categories (CodeValue) per kind, in id order, and the partitions (models).
_CATEGORIES: Final[dict[IModelKind, tuple[str, ...]]] = {
    "building": (
        "Exterior Walls", "Interior Walls", "Doors", "Windows", "Floors",
        "Structural Columns", "Structural Framing", "Pipes", "Pipe Fittings", "Rooms",
    ),
    "site": ("Pipes", "Pipe Fittings", "Manholes", "Paving", "Curbs", "Site Lighting"),
}  # fmt: skip
_MODELS: Final[dict[IModelKind, tuple[str, ...]]] = {
    "building": ("Architecture", "Structure", "Plumbing"),
    "site": ("Site Utilities", "Site Works"),
}


def planned_counts(kind: IModelKind, elements: int) -> dict[str, int]:
    """Geometric elements per class (``Schema.Class``) that ``generate_imodel`` writes; sums to ``elements``."""
    if elements < 0:
        raise ValueError("elements must be >= 0")
    mix = _MIX[kind]
    counts = {name: elements * share // 1000 for name, share in mix}
    counts[mix[0][0]] += elements - sum(counts.values())
    return counts


def storey_count(elements: int) -> int:
    """Storeys of a generated building: one per ~400 elements, between 2 and 40."""
    return max(2, min(40, math.ceil(elements / 400)))


def _split(total: int, parts: int, index: int) -> int:
    """Size of the ``index``-th of ``parts`` near-equal slices of ``total``."""
    return (index + 1) * total // parts - index * total // parts


# ------------------------------------------------------------------- the writer

_Value = str | int | float | None
_Row = tuple[_Value, ...]
_BATCH: Final = 20_000
_INSERT_ELEMENT: Final = "INSERT INTO im_elements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_ASPECT: Final = "INSERT INTO im_aspects VALUES (?,?,?,?,?)"
_DELETE_IMODEL: Final = (
    "DELETE FROM im_aspects WHERE imodel_id = ?",
    "DELETE FROM im_elements WHERE imodel_id = ?",
    "DELETE FROM im_class_properties WHERE imodel_id = ?",
    "DELETE FROM im_classes WHERE imodel_id = ?",
)
_Box = tuple[float, float, float, float, float, float]
_Props = dict[str, object]


def _dumps(props: _Props) -> str:
    return json.dumps(props, separators=(",", ":"), ensure_ascii=False)


class _Writer:
    """Allocates ids in one sequence and batches element/aspect rows into executemany."""

    def __init__(self, conn: sqlite3.Connection, imodel_id: str) -> None:
        self._conn = conn
        self._imodel_id = imodel_id
        self._sequence = 0
        self._elements: list[_Row] = []
        self._aspects: list[_Row] = []
        self.element_rows = 0

    def next_id(self) -> int:
        self._sequence += 1
        return local_id(self._sequence)

    def element(
        self,
        element_id: int,
        class_name: str,
        *,
        code: str | None,
        label: str | None,
        category: int | None,
        model: int | None,
        parent: int | None,
        props: _Props,
        box: _Box | None = None,
        measures: tuple[float, float, float] | None = None,
    ) -> None:
        geometry: tuple[_Value, ...] = box if box is not None else (None,) * 6
        values: tuple[_Value, ...] = measures if measures is not None else (None,) * 3
        row: _Row = (self._imodel_id, element_id, CLASS_IDS[class_name], code, label, category, model, parent)
        self._elements.append(row + geometry + values + (_dumps(props),))
        self.element_rows += 1
        if len(self._elements) >= _BATCH:
            self.flush()

    def aspect(self, class_name: str, element_id: int, props: _Props) -> None:
        self._aspects.append((self._imodel_id, self.next_id(), CLASS_IDS[class_name], element_id, _dumps(props)))

    def flush(self) -> None:
        if self._elements:
            self._conn.executemany(_INSERT_ELEMENT, self._elements)
            self._elements.clear()
        if self._aspects:
            self._conn.executemany(_INSERT_ASPECT, self._aspects)
            self._aspects.clear()


def _box(x: float, y: float, z: float, dx: float, dy: float, dz: float) -> _Box:
    return (x, y, z, x + dx, y + dy, z + dz)


def _cylinder_box(x: float, y: float, z: float, diameter: float, length: float, axis: int) -> _Box:
    """Box of a cylinder starting at (x, y, z) on its axis (0=x, 1=y, 2=z)."""
    r = diameter / 2.0
    if axis == 0:
        return (x, y - r, z - r, x + length, y + r, z + r)
    if axis == 1:
        return (x - r, y, z - r, x + r, y + length, z + r)
    return (x - r, y - r, z, x + r, y + r, z + length)


def _mm(value: float) -> float:
    return round(value, 3)


# ------------------------------------------------------------ fixed structure


def _write_structure(w: _Writer, kind: IModelKind, title: str) -> tuple[dict[str, int], dict[str, int]]:
    """Root subject, dictionary partition, physical partitions and categories; returns their ids."""
    w.element(
        ROOT_SUBJECT_ID,
        "BisCore.Subject",
        code=title,
        label=None,
        category=None,
        model=ROOT_SUBJECT_ID,
        parent=None,
        props={"Description": f"Root subject of {title}"},
    )
    w.element(
        DICTIONARY_MODEL_ID,
        "BisCore.DefinitionPartition",
        code="BisCore.DictionaryModel",
        label=None,
        category=None,
        model=ROOT_SUBJECT_ID,
        parent=ROOT_SUBJECT_ID,
        props={},
    )
    models: dict[str, int] = {}
    for name in _MODELS[kind]:
        models[name] = w.next_id()
        w.element(
            models[name],
            "BisCore.PhysicalPartition",
            code=name,
            label=None,
            category=None,
            model=ROOT_SUBJECT_ID,
            parent=ROOT_SUBJECT_ID,
            props={
                "Description": f"{name} model",
                "JsonProperties": {"formatter": {"mastUnit": {"label": "m"}, "subUnit": {"label": "mm"}}},
            },
        )
    categories: dict[str, int] = {}
    for name in _CATEGORIES[kind]:
        categories[name] = w.next_id()
        w.element(
            categories[name],
            "BisCore.SpatialCategory",
            code=name,
            label=None,
            category=None,
            model=DICTIONARY_MODEL_ID,
            parent=None,
            props={"IsPrivate": False, "Rank": 3, "Description": f"{name} of the {title}"},
        )
    return models, categories


def _write_classes(conn: sqlite3.Connection, imodel_id: str) -> None:
    conn.executemany(
        "INSERT INTO im_classes VALUES (?,?,?,?,?,?,?)",
        [
            (
                imodel_id,
                c.class_id,
                c.schema,
                SCHEMA_ALIASES[c.schema],
                c.name,
                CLASS_IDS[c.base] if c.base else None,
                c.kind,
            )
            for c in CLASS_DEFS
        ],
    )
    conn.executemany(
        "INSERT INTO im_class_properties VALUES (?,?,?,?)",
        [(imodel_id, c.class_id, name, ptype) for c in CLASS_DEFS for name, ptype in c.properties],
    )


# ------------------------------------------------------------------ building

_STOREY_HEIGHT: Final = 3.6
_SLAB: Final = 0.25
_CLEAR: Final = _STOREY_HEIGHT - _SLAB  # wall/column/room height

_EXT_WALL: Final = (("Brick", 0.3), ("Reinforced Concrete", 0.25), ("Precast Concrete", 0.3))
_INT_WALL: Final = (("Gypsum Board", 0.1), ("Concrete Block", 0.15), ("Timber Stud", 0.125))
_INT_WALL_RATINGS: Final = (None, None, "EI 30", "EI 60", "REI 60")
_DOOR_RATINGS: Final = (None, None, None, "EI 30", "EI 60", "EI2 30-Sa")
_DOOR_MAKERS: Final = ("Hörmann", "Jeld-Wen", "Assa Abloy", "Dormakaba")
_WINDOW_MAKERS: Final = ("Schüco", "Reynaers", "Velux", "Jeld-Wen")
_TECHNICIANS: Final = ("A. Novak", "B. Okafor", "C. Lindqvist", "D. Moreau")
_ACTIONS: Final = ("Inspection", "Lubrication", "Seal replacement", "Repair", "Cleaning")
_PIPE_SYSTEMS: Final = ("Domestic Cold Water", "Domestic Hot Water", "Sanitary", "Rainwater", "Heating")
_PIPE_MATERIALS: Final = ("Copper", "PVC-U", "Cast Iron", "Stainless Steel")
_PIPE_DIAMETERS: Final = (0.025, 0.032, 0.04, 0.05, 0.065, 0.08, 0.1, 0.15)
_FITTINGS: Final = ("Elbow 90", "Tee", "Reducer", "Coupling")
_SPACES: Final = (
    ("Office", 4),
    ("Open Office", 12),
    ("Meeting Room", 8),
    ("Corridor", 0),
    ("Restroom", 0),
    ("Storage", 0),
    ("Kitchen", 6),
)
_DEPARTMENTS: Final = ("Engineering", "Finance", "Operations", "Sales", "Shared")
_COST_RATE: Final = {  # currency per m³ (solids) of the element's volume
    "Building.Wall": 410.0,
    "Building.Slab": 290.0,
    "Building.Column": 950.0,
    "Building.Beam": 1250.0,
    "Building.Door": 6800.0,
    "Building.Window": 9500.0,
    "Plumbing.Pipe": 21000.0,
    "Site.Pavement": 180.0,
    "Site.Curb": 520.0,
}


@dataclass
class _Wall:
    id: int
    x: float
    y: float
    z: float
    along_x: bool
    length: float
    thickness: float


class _BuildingGenerator:
    """Writes one office building storey by storey; classes within a storey in a fixed order."""

    def __init__(self, w: _Writer, rng: random.Random, elements: int, title: str) -> None:
        self.w = w
        self.rng = rng
        self.counts = planned_counts("building", elements)
        self.storeys = storey_count(elements)
        per_storey = elements / self.storeys
        self.width = max(40.0, round(math.sqrt(per_storey) * 3.0))
        self.depth = round(self.width * 0.6)
        self.models, self.categories = _write_structure(w, "building", title)
        self.serial: dict[str, int] = {}

    def run(self) -> None:
        for s in range(self.storeys):
            n = {name: _split(total, self.storeys, s) for name, total in self.counts.items()}
            level = f"L{s:02d}"
            z = s * _STOREY_HEIGHT
            self.slabs(n["Building.Slab"], level, z)
            self.columns(n["Building.Column"], level, z)
            walls = self.walls(n["Building.Wall"], level, z)
            self.beams(n["Building.Beam"], level, z)
            self.doors(n["Building.Door"], level, walls)
            self.windows(n["Building.Window"], level, walls)
            self.pipes(n["Plumbing.Pipe"], level, z)
            self.fittings(n["Plumbing.Fitting"], level, z)
            self.spaces(n["Building.Space"], level, z)
        self.w.flush()

    # helpers
    def code(self, prefix: str, level: str) -> str:
        k = self.serial.get(prefix, 0) + 1
        self.serial[prefix] = k
        return f"{prefix}-{level}-{k:04d}"

    def point(self) -> tuple[float, float]:
        return _mm(self.rng.uniform(0.0, self.width)), _mm(self.rng.uniform(0.0, self.depth))

    def cost(self, class_name: str, element_id: int, volume: float) -> None:
        """Unique CostAspect on ~40% of the elements of a costed class."""
        if self.rng.random() < 0.4:
            code = f"C-{class_name.split('.')[1][:3].upper()}-{self.rng.randint(100, 999)}"
            props: _Props = {"Cost": round(volume * _COST_RATE[class_name], 2), "Currency": "EUR", "CostCode": code}
            self.w.aspect("Building.CostAspect", element_id, props)

    def fire(self, element_id: int, rating: str | None) -> None:
        """Unique FireRatingAspect on half of the rated elements."""
        if rating is not None and self.rng.random() < 0.5:
            certified = self.rng.random() < 0.8
            props: _Props = {"Rating": rating, "TestStandard": "EN 13501-2", "Certified": certified}
            self.w.aspect("Building.FireRatingAspect", element_id, props)

    def maintenance(self, element_id: int, share: float) -> None:
        """MaintenanceRecordAspect: one record on ``share`` of the elements, two on a quarter of those."""
        if self.rng.random() >= share:
            return
        records = 2 if self.rng.random() < 0.25 else 1
        for r in range(records):
            props: _Props = {
                "Date": f"2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}",
                "Technician": self.rng.choice(_TECHNICIANS),
                "Action": self.rng.choice(_ACTIONS) if r == 0 else "Follow-up inspection",
                "Hours": self.rng.choice((0.5, 1.0, 1.5, 2.0, 4.0)),
            }
            self.w.aspect("Building.MaintenanceRecordAspect", element_id, props)

    # classes
    def slabs(self, count: int, level: str, z: float) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            dx, dy = _mm(self.rng.uniform(6.0, 12.0)), _mm(self.rng.uniform(6.0, 12.0))
            t = self.rng.choice((0.2, 0.25, 0.3))
            x, y = self.point()
            roof = level == f"L{self.storeys - 1:02d}" and self.rng.random() < 0.5
            rating = self.rng.choice(("REI 60", "REI 90", "REI 120"))
            material = self.rng.choice(("Reinforced Concrete", "Reinforced Concrete", "Post-tensioned Concrete"))
            measures = box_measures(dx, dy, t, "largest_face_perimeter")
            props: _Props = {
                "Material": material,
                "Level": level,
                "Thickness": t,
                "SlabType": "Roof" if roof else "Floor",
                "FireRating": rating,
            }
            self.w.element(
                eid,
                "Building.Slab",
                code=self.code("SL", level),
                label=f"Floor: {material} {int(t * 1000)}mm",
                category=self.categories["Floors"],
                model=self.models["Architecture"],
                parent=None,
                props=props,
                box=_box(x, y, z, dx, dy, t),
                measures=measures,
            )
            self.fire(eid, rating)
            self.cost("Building.Slab", eid, measures[2])

    def columns(self, count: int, level: str, z: float) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            steel = self.rng.random() < 0.3
            side = self.rng.choice((0.3, 0.4)) if steel else self.rng.choice((0.4, 0.5, 0.6))
            profile = self.rng.choice(("HEB 300", "HEB 400")) if steel else f"{int(side * 1000)}x{int(side * 1000)} RC"
            x, y = self.point()
            measures = box_measures(side, side, _CLEAR, "longest_edge")
            props: _Props = {
                "Material": "Steel" if steel else "Reinforced Concrete",
                "Level": level,
                "Width": side,
                "Depth": side,
                "Height": _CLEAR,
                "Profile": profile,
            }
            self.w.element(
                eid,
                "Building.Column",
                code=self.code("C", level),
                label=f"Column {profile}",
                category=self.categories["Structural Columns"],
                model=self.models["Structure"],
                parent=None,
                props=props,
                box=_box(x, y, z + _SLAB, side, side, _CLEAR),
                measures=measures,
            )
            self.cost("Building.Column", eid, measures[2])

    def walls(self, count: int, level: str, z: float) -> list[_Wall]:
        walls: list[_Wall] = []
        for _ in range(count):
            eid = self.w.next_id()
            external = self.rng.random() < 0.3
            material, t = self.rng.choice(_EXT_WALL if external else _INT_WALL)
            rating = self.rng.choice(("REI 90", "REI 120")) if external else self.rng.choice(_INT_WALL_RATINGS)
            length = _mm(self.rng.uniform(4.0, 12.0))
            along_x = self.rng.random() < 0.5
            x, y = self.point()
            dx, dy = (length, t) if along_x else (t, length)
            measures = box_measures(dx, dy, _CLEAR, "longest_edge")
            bearing = external or material == "Concrete Block"
            props: _Props = {
                "Material": material,
                "Level": level,
                "Thickness": t,
                "Height": _CLEAR,
                "IsExternal": external,
                "LoadBearing": bearing,
            }
            if rating is not None:
                props["FireRating"] = rating
            side = "Exterior" if external else "Interior"
            self.w.element(
                eid,
                "Building.Wall",
                code=self.code("W", level),
                label=f"Basic Wall: {side} - {material} {int(t * 1000)}mm",
                category=self.categories[f"{side} Walls"],
                model=self.models["Architecture"],
                parent=None,
                props=props,
                box=_box(x, y, z + _SLAB, dx, dy, _CLEAR),
                measures=measures,
            )
            self.fire(eid, rating)
            self.cost("Building.Wall", eid, measures[2])
            walls.append(_Wall(eid, x, y, z + _SLAB, along_x, length, t))
        return walls

    def beams(self, count: int, level: str, z: float) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            material = self.rng.choice(("Steel", "Steel", "Reinforced Concrete", "Glulam Timber"))
            width, depth, profile = {
                "Steel": (0.15, 0.3, "IPE 300"),
                "Reinforced Concrete": (0.3, 0.6, "300x600 RC"),
                "Glulam Timber": (0.2, 0.6, "GL24h 200x600"),
            }[material]
            length = _mm(self.rng.uniform(4.0, 9.0))
            along_x = self.rng.random() < 0.5
            x, y = self.point()
            dx, dy = (length, width) if along_x else (width, length)
            measures = box_measures(dx, dy, depth, "longest_edge")
            props: _Props = {
                "Material": material,
                "Level": level,
                "Width": width,
                "Depth": depth,
                "Length": length,
                "Profile": profile,
            }
            self.w.element(
                eid,
                "Building.Beam",
                code=self.code("B", level),
                label=f"Beam {profile}",
                category=self.categories["Structural Framing"],
                model=self.models["Structure"],
                parent=None,
                props=props,
                box=_box(x, y, z + _STOREY_HEIGHT - depth, dx, dy, depth),
                measures=measures,
            )
            self.cost("Building.Beam", eid, measures[2])

    def hosted_box(self, host: _Wall, width: float, height: float, sill: float, thickness: float) -> _Box:
        """Box of a door/window centred in the thickness of ``host``, at a random offset along it."""
        offset = _mm(self.rng.uniform(0.1, host.length - width - 0.1))
        inset = (host.thickness - thickness) / 2.0
        if host.along_x:
            return _box(host.x + offset, host.y + inset, host.z + sill, width, thickness, height)
        return _box(host.x + inset, host.y + offset, host.z + sill, thickness, width, height)

    def doors(self, count: int, level: str, walls: Sequence[_Wall]) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            host = self.rng.choice(walls) if walls else None
            width = self.rng.choice((0.8, 0.9, 1.0, 1.2))
            height, t = 2.1, 0.05
            rating = self.rng.choice(_DOOR_RATINGS)
            material = self.rng.choice(("Timber", "Timber", "Steel", "Aluminium"))
            operation = "Double Swing" if width >= 1.2 else "Single Swing"
            if host is not None:
                box = self.hosted_box(host, width, height, 0.0, t)
            else:
                x, y = self.point()
                box = _box(x, y, 0.0, width, t, height)
            measures = box_measures(width, t, height, "largest_face_perimeter")
            props: _Props = {
                "Material": material,
                "Level": level,
                "Width": width,
                "Height": height,
                "Manufacturer": self.rng.choice(_DOOR_MAKERS),
                "OperationType": operation,
            }
            if rating is not None:
                props["FireRating"] = rating
            self.w.element(
                eid,
                "Building.Door",
                code=self.code("D", level),
                label=f"{operation}-Flush {int(width * 1000)}x{int(height * 1000)}",
                category=self.categories["Doors"],
                model=self.models["Architecture"],
                parent=host.id if host else None,
                props=props,
                box=box,
                measures=measures,
            )
            self.fire(eid, rating)
            self.cost("Building.Door", eid, measures[2])
            self.maintenance(eid, 0.4)

    def windows(self, count: int, level: str, walls: Sequence[_Wall]) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            host = self.rng.choice(walls) if walls else None
            width = self.rng.choice((1.2, 1.5, 1.8, 2.4))
            height, t = self.rng.choice((1.2, 1.5, 1.8)), 0.1
            triple = self.rng.random() < 0.4
            if host is not None:
                box = self.hosted_box(host, width, height, 0.9, t)
            else:
                x, y = self.point()
                box = _box(x, y, 0.9, width, t, height)
            measures = box_measures(width, t, height, "largest_face_perimeter")
            props: _Props = {
                "Material": self.rng.choice(("Aluminium", "uPVC", "Timber")),
                "Level": level,
                "Width": width,
                "Height": height,
                "Manufacturer": self.rng.choice(_WINDOW_MAKERS),
                "GlazingType": "Triple" if triple else "Double",
                "UValue": self.rng.choice((0.7, 0.8) if triple else (1.1, 1.3)),
            }
            self.w.element(
                eid,
                "Building.Window",
                code=self.code("WN", level),
                label=f"Fixed {int(width * 1000)}x{int(height * 1000)}",
                category=self.categories["Windows"],
                model=self.models["Architecture"],
                parent=host.id if host else None,
                props=props,
                box=box,
                measures=measures,
            )
            self.cost("Building.Window", eid, measures[2])
            self.maintenance(eid, 0.15)

    def pipes(self, count: int, level: str, z: float) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            diameter = self.rng.choice(_PIPE_DIAMETERS)
            riser = self.rng.random() < 0.25
            axis = 2 if riser else self.rng.randint(0, 1)
            length = _STOREY_HEIGHT if riser else _mm(self.rng.uniform(1.0, 6.0))
            x, y = self.point()
            start_z = z if riser else z + _STOREY_HEIGHT - 0.9
            system = self.rng.choice(_PIPE_SYSTEMS)
            props: _Props = {
                "SystemName": system,
                "Material": self.rng.choice(_PIPE_MATERIALS),
                "Diameter": diameter,
                "Length": length,
                "PressureRating": "PN10" if diameter <= 0.05 else "PN16",
                "JsonProperties": {"Plumbing": {"level": level, "insulated": system != "Sanitary"}},
            }
            measures = cylinder_measures(diameter, length)
            self.w.element(
                eid,
                "Plumbing.Pipe",
                code=None,
                label=f"Pipe DN{int(diameter * 1000)} {system}",
                category=self.categories["Pipes"],
                model=self.models["Plumbing"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, start_z, diameter, length, axis),
                measures=measures,
            )
            self.cost("Plumbing.Pipe", eid, measures[2])

    def fittings(self, count: int, level: str, z: float) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            diameter = self.rng.choice(_PIPE_DIAMETERS)
            fitting = self.rng.choice(_FITTINGS)
            length = _mm(diameter * 2.0 + 0.05)
            x, y = self.point()
            props: _Props = {
                "SystemName": self.rng.choice(_PIPE_SYSTEMS),
                "Material": self.rng.choice(_PIPE_MATERIALS),
                "FittingType": fitting,
                "Diameter": diameter,
                "JsonProperties": {"Plumbing": {"level": level}},
            }
            self.w.element(
                eid,
                "Plumbing.Fitting",
                code=None,
                label=f"{fitting} DN{int(diameter * 1000)}",
                category=self.categories["Pipe Fittings"],
                model=self.models["Plumbing"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, z + _STOREY_HEIGHT - 0.9, diameter, length, 0),
                measures=cylinder_measures(diameter, length),
            )

    def spaces(self, count: int, level: str, z: float) -> None:
        for k in range(count):
            eid = self.w.next_id()
            space_type, per_person = self.rng.choice(_SPACES)
            dx, dy = _mm(self.rng.uniform(3.0, 10.0)), _mm(self.rng.uniform(3.0, 8.0))
            x, y = self.point()
            floor_area = round(dx * dy, 3)
            props: _Props = {
                "Level": level,
                "SpaceType": space_type,
                "FloorArea": floor_area,
                "Occupancy": max(1, int(floor_area // per_person)) if per_person else 0,
                "JsonProperties": {
                    "Space": {"department": self.rng.choice(_DEPARTMENTS), "bookable": space_type == "Meeting Room"}
                },
            }
            storey = int(level[1:])
            self.w.element(
                eid,
                "Building.Space",
                code=f"{level}-R{k + 1:03d}",
                label=f"{space_type} {storey}.{k + 1:02d}",
                category=self.categories["Rooms"],
                model=self.models["Architecture"],
                parent=None,
                props=props,
                box=_box(x, y, z + _SLAB, dx, dy, _CLEAR),
                measures=box_measures(dx, dy, _CLEAR, "footprint_perimeter"),
            )


# ---------------------------------------------------------------------- site

_SITE_SYSTEMS: Final = (
    ("Storm Drainage", ("PVC", "Reinforced Concrete", "HDPE"), (0.3, 0.45, 0.6, 0.9, 1.2)),
    ("Sanitary Sewer", ("PVC", "Vitrified Clay"), (0.15, 0.2, 0.25, 0.3)),
    ("Potable Water", ("Ductile Iron", "HDPE"), (0.1, 0.15, 0.2)),
)
_ZONES: Final = ("North", "East", "South", "West")


class _SiteGenerator:
    """Writes the site: utility networks below ground, paving, curbs and lighting at grade."""

    def __init__(self, w: _Writer, rng: random.Random, elements: int, title: str) -> None:
        self.w = w
        self.rng = rng
        self.counts = planned_counts("site", elements)
        self.size = max(200.0, round(math.sqrt(elements) * 10.0))
        self.models, self.categories = _write_structure(w, "site", title)
        self.serial: dict[str, int] = {}

    def run(self) -> None:
        zones = len(_ZONES)
        for s, zone in enumerate(_ZONES):
            n = {name: _split(total, zones, s) for name, total in self.counts.items()}
            self.manholes(n["Plumbing.Manhole"], zone)
            self.pipes(n["Plumbing.Pipe"], zone)
            self.fittings(n["Plumbing.Fitting"], zone)
            self.pavements(n["Site.Pavement"], zone)
            self.curbs(n["Site.Curb"], zone)
            self.poles(n["Site.LightPole"], zone)
        self.w.flush()

    def code(self, prefix: str) -> str:
        k = self.serial.get(prefix, 0) + 1
        self.serial[prefix] = k
        return f"{prefix}-{k:04d}"

    def point(self, zone: str) -> tuple[float, float]:
        """A point in the zone's quadrant of the square site."""
        half = self.size / 2.0
        ox, oy = {"North": (0.0, half), "East": (half, half), "South": (half, 0.0), "West": (0.0, 0.0)}[zone]
        return _mm(ox + self.rng.uniform(0.0, half)), _mm(oy + self.rng.uniform(0.0, half))

    def records(self, element_id: int, share: float) -> None:
        if self.rng.random() >= share:
            return
        for r in range(2 if self.rng.random() < 0.3 else 1):
            props: _Props = {
                "Date": f"2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}",
                "Technician": self.rng.choice(_TECHNICIANS),
                "Action": "CCTV survey" if r == 0 else "Jetting",
                "Hours": self.rng.choice((1.0, 2.0, 3.0)),
            }
            self.w.aspect("Building.MaintenanceRecordAspect", element_id, props)

    def cost(self, class_name: str, element_id: int, volume: float) -> None:
        if self.rng.random() < 0.5:
            code = f"S-{class_name.split('.')[1][:3].upper()}-{self.rng.randint(100, 999)}"
            props: _Props = {"Cost": round(volume * _COST_RATE[class_name], 2), "Currency": "EUR", "CostCode": code}
            self.w.aspect("Building.CostAspect", element_id, props)

    def manholes(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            diameter = self.rng.choice((1.0, 1.2, 1.5))
            depth = _mm(self.rng.uniform(1.5, 4.5))
            x, y = self.point(zone)
            system = self.rng.choice(_SITE_SYSTEMS[:2])[0]
            cover = self.rng.choice(("D400 Ductile Iron", "B125 Composite"))
            props: _Props = {
                "SystemName": system,
                "Material": "Precast Concrete",
                "Diameter": diameter,
                "Depth": depth,
                "CoverType": cover,
            }
            self.w.element(
                eid,
                "Plumbing.Manhole",
                code=self.code("MH"),
                label=f"Manhole {system} DN{int(diameter * 1000)}",
                category=self.categories["Manholes"],
                model=self.models["Site Utilities"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, -depth, diameter, depth, 2),
                measures=cylinder_measures(diameter, depth),
            )
            self.records(eid, 0.5)

    def pipes(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            system, materials, diameters = self.rng.choice(_SITE_SYSTEMS)
            diameter = self.rng.choice(diameters)
            length = _mm(self.rng.uniform(5.0, 60.0))
            x, y = self.point(zone)
            cover = _mm(self.rng.uniform(1.2, 3.0))
            rating = "PN16" if system == "Potable Water" else "Gravity"
            props: _Props = {
                "SystemName": system,
                "Material": self.rng.choice(materials),
                "Diameter": diameter,
                "Length": length,
                "PressureRating": rating,
            }
            measures = cylinder_measures(diameter, length)
            self.w.element(
                eid,
                "Plumbing.Pipe",
                code=self.code("P"),
                label=f"Pipe DN{int(diameter * 1000)} {system}",
                category=self.categories["Pipes"],
                model=self.models["Site Utilities"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, -cover, diameter, length, self.rng.randint(0, 1)),
                measures=measures,
            )
            self.cost("Plumbing.Pipe", eid, measures[2])
            self.records(eid, 0.1)

    def fittings(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            system, materials, diameters = self.rng.choice(_SITE_SYSTEMS)
            diameter = self.rng.choice(diameters)
            fitting = self.rng.choice(_FITTINGS)
            length = _mm(diameter * 2.0 + 0.05)
            x, y = self.point(zone)
            props: _Props = {
                "SystemName": system,
                "Material": self.rng.choice(materials),
                "FittingType": fitting,
                "Diameter": diameter,
            }
            self.w.element(
                eid,
                "Plumbing.Fitting",
                code=None,
                label=f"{fitting} DN{int(diameter * 1000)}",
                category=self.categories["Pipe Fittings"],
                model=self.models["Site Utilities"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, -1.5, diameter, length, 0),
                measures=cylinder_measures(diameter, length),
            )

    def pavements(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            surface, material, t = self.rng.choice(
                (
                    ("Asphalt", "Asphalt Concrete", 0.3),
                    ("Concrete Pavers", "Precast Concrete", 0.2),
                    ("Gravel", "Crushed Stone", 0.25),
                )
            )
            dx, dy = _mm(self.rng.uniform(10.0, 40.0)), _mm(self.rng.uniform(10.0, 40.0))
            x, y = self.point(zone)
            measures = box_measures(dx, dy, t, "largest_face_perimeter")
            props: _Props = {"Material": material, "Zone": zone, "Thickness": t, "SurfaceType": surface}
            self.w.element(
                eid,
                "Site.Pavement",
                code=self.code("PV"),
                label=f"Pavement: {surface}",
                category=self.categories["Paving"],
                model=self.models["Site Works"],
                parent=None,
                props=props,
                box=_box(x, y, -t, dx, dy, t),
                measures=measures,
            )
            self.cost("Site.Pavement", eid, measures[2])

    def curbs(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            material = self.rng.choice(("Granite", "Precast Concrete"))
            length = _mm(self.rng.uniform(5.0, 30.0))
            width, height = 0.15, 0.3
            along_x = self.rng.random() < 0.5
            x, y = self.point(zone)
            dx, dy = (length, width) if along_x else (width, length)
            measures = box_measures(dx, dy, height, "longest_edge")
            props: _Props = {"Material": material, "Zone": zone, "Width": width, "Height": height}
            self.w.element(
                eid,
                "Site.Curb",
                code=self.code("CB"),
                label=f"Curb {material} 150x300",
                category=self.categories["Curbs"],
                model=self.models["Site Works"],
                parent=None,
                props=props,
                box=_box(x, y, -0.15, dx, dy, height),
                measures=measures,
            )
            self.cost("Site.Curb", eid, measures[2])

    def poles(self, count: int, zone: str) -> None:
        for _ in range(count):
            eid = self.w.next_id()
            height = self.rng.choice((6.0, 8.0, 10.0))
            diameter = 0.15 if height < 8.0 else 0.2
            x, y = self.point(zone)
            props: _Props = {
                "Material": "Galvanized Steel",
                "Zone": zone,
                "Height": height,
                "Diameter": diameter,
                "Wattage": self.rng.choice((50, 75, 100, 150)),
                "Manufacturer": self.rng.choice(("Signify", "Thorn", "Schréder")),
            }
            self.w.element(
                eid,
                "Site.LightPole",
                code=self.code("LP"),
                label=f"Light Pole {int(height)}m",
                category=self.categories["Site Lighting"],
                model=self.models["Site Works"],
                parent=None,
                props=props,
                box=_cylinder_box(x, y, 0.0, diameter, height, 2),
                measures=cylinder_measures(diameter, height),
            )
            self.records(eid, 0.3)


# ----------------------------------------------------------------- entry points


def _title_for(imodel_id: str, kind: IModelKind) -> str:
    for imodel in SANDBOX_IMODELS:
        if imodel.id == imodel_id:
            return imodel.name
    return "Generated Office Building" if kind == "building" else "Generated Site"


def generate_imodel(
    conn: sqlite3.Connection,
    imodel_id: str,
    *,
    elements: int,
    seed: int = 0,
    kind: IModelKind = "building",
    title: str | None = None,
) -> int:
    """Replace ``imodel_id``'s data with a generated iModel; returns the element rows written.

    ``elements`` geometric elements are written exactly (per class: ``planned_counts``), plus
    the root subject, partitions and categories. ``title`` is the root Subject's CodeValue
    (default: the sample iModel's name, else a generic one). One transaction (or the caller's).
    """
    if elements < 0:
        raise ValueError("elements must be >= 0")
    rng = random.Random(seed)  # noqa: S311 -- reproducible sample data, not security
    with _transaction(conn):
        create_schema(conn)
        for statement in _DELETE_IMODEL:
            conn.execute(statement, (imodel_id,))
        _write_classes(conn, imodel_id)
        writer = _Writer(conn, imodel_id)
        title = title or _title_for(imodel_id, kind)
        generator = _BuildingGenerator if kind == "building" else _SiteGenerator
        generator(writer, rng, elements, title).run()
    return writer.element_rows


def generate_site_imodel(
    conn: sqlite3.Connection, imodel_id: str, *, elements: int, seed: int = 0, title: str | None = None
) -> int:
    """``generate_imodel`` with ``kind="site"``: utility networks, paving, curbs and lighting."""
    return generate_imodel(conn, imodel_id, elements=elements, seed=seed, kind="site", title=title)


def ensure_sample_imodels(conn: sqlite3.Connection) -> None:
    """Create the tables and generate every ``SANDBOX_IMODELS`` entry that has no elements yet."""
    with _transaction(conn):
        create_schema(conn)
        for imodel in SANDBOX_IMODELS:
            row = conn.execute("SELECT COUNT(*) FROM im_elements WHERE imodel_id = ?", (imodel.id,)).fetchone()
            if row[0] == 0:
                generate_imodel(conn, imodel.id, elements=imodel.elements, seed=imodel.seed, kind=imodel.kind)
