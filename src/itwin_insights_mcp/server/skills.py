"""The Agent-Skills bundle as data: scanned once into a frozen index, read only through it (no path traversal).

Skills live in the repository's `skills/` folder and ship inside the wheel as `itwin_insights_mcp/skills`; a source
checkout (editable install) reads the repository folder. Each file is addressed as `skill://<skill>/<path>`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SkillFile", "SkillIndex", "load_skills"]


@dataclass(frozen=True)
class SkillFile:
    """One file of a skill."""

    skill: str
    path: str  # relative to the skill folder, with forward slashes
    text: str

    @property
    def uri(self) -> str:
        return f"skill://{self.skill}/{self.path}"


@dataclass(frozen=True)
class SkillIndex:
    """Every skill's description and files, keyed for lookup."""

    descriptions: dict[str, str]
    files: dict[tuple[str, str], SkillFile]

    def manifest(self) -> dict[str, Any]:
        """Skills, what each is for, and their files' URIs."""
        return {
            "skills": [
                {
                    "name": name,
                    "description": description,
                    "files": [f.uri for (skill, _), f in sorted(self.files.items()) if skill == name],
                }
                for name, description in sorted(self.descriptions.items())
            ]
        }

    def read(self, skill: str, path: str = "SKILL.md") -> SkillFile:
        """A file of a skill; a wrong name raises KeyError with the valid choices in its message."""
        if skill not in self.descriptions:
            raise KeyError(f"Unknown skill {skill!r}. Skills: {', '.join(sorted(self.descriptions))}.")
        found = self.files.get((skill, path))
        if found is None:
            paths = sorted(p for s, p in self.files if s == skill)
            raise KeyError(f"Skill {skill!r} has no file {path!r}. Files: {', '.join(paths)}.")
        return found

    def by_uri(self, uri: str) -> SkillFile:
        if not uri.startswith("skill://"):
            raise KeyError(f"Not a skill URI: {uri!r}")
        skill, _, path = uri.removeprefix("skill://").partition("/")
        return self.read(skill, path or "SKILL.md")


def _skills_root() -> Path | None:
    packaged = Path(__file__).resolve().parents[1] / "skills"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "skills"  # src/itwin_insights_mcp/server -> repository root
    return checkout if checkout.is_dir() else None


def _description(skill_md: str) -> str:
    if not skill_md.startswith("---"):
        return ""
    front = skill_md.split("---", 2)[1]
    data = yaml.safe_load(front) or {}
    return str(data.get("description", "")).strip()


@functools.cache
def load_skills() -> SkillIndex:
    """Scan the skills folder once per process."""
    root = _skills_root()
    descriptions: dict[str, str] = {}
    files: dict[tuple[str, str], SkillFile] = {}
    if root is None:
        return SkillIndex(descriptions, files)
    for folder in sorted(p for p in root.iterdir() if (p / "SKILL.md").is_file()):
        for file in sorted(folder.rglob("*")):
            if file.is_file() and file.suffix in (".md", ".txt", ".json", ".yaml"):
                relative = file.relative_to(folder).as_posix()
                files[(folder.name, relative)] = SkillFile(folder.name, relative, file.read_text(encoding="utf-8"))
        descriptions[folder.name] = _description(files[(folder.name, "SKILL.md")].text)
    return SkillIndex(descriptions, files)
