"""Print requirements.txt with every package pinned to the lowest version its range allows (`make floors`); torch and
torchvision keep their ranges (an old PyTorch brings old CUDA libraries of several GB, not what the floors are about).

Kept by hand: uv's `--resolution lowest-direct` would pin torch too and fetch it from PyPI (a CUDA build of several GB)
instead of the wheels this machine has, and pip has no lowest-versions mode.

    python scripts/floor_requirements.py [requirements.txt]
"""

import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import Version


def floor_pin(line: str) -> str:
    """`name==lowest` (extras and marker kept), or the line as it is for torch and torchvision; a ValueError when the
    requirement has no lower bound that it allows itself."""
    requirement = Requirement(line)
    if requirement.name.lower() in ("torch", "torchvision") or "===" in str(requirement.specifier):
        return line.replace(" ", "")  # a range kept, or an exact string (===) as it is
    bounds = [Version(spec.version.removesuffix(".*")) for spec in requirement.specifier
              if spec.operator in (">=", "~=", "==")]
    lowest = max(bounds, default=None)  # with several bounds, the highest is the lowest that all allow
    if lowest is None:
        raise ValueError(f"{line} has no lower bound (>=, ~= or ==): give it one, so that its floor is checked")
    if not requirement.specifier.contains(lowest, prereleases=True):
        raise ValueError(f"{line} excludes its own lower bound {lowest}: give it a bound that it allows")
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}=={lowest}" + (f"; {requirement.marker}" if requirement.marker else "")


def floor_pins(text: str) -> list[str]:
    """A floor pin for each requirement of a requirements file's text."""
    return [floor_pin(line) for line in (line.split("#", 1)[0].strip() for line in text.splitlines()) if line]


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "requirements.txt"
    try:
        print("\n".join(floor_pins(path.read_text())))
    except (OSError, ValueError, InvalidRequirement) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main(sys.argv)
