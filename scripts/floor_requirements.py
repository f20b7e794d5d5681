"""Print requirements.txt with each package pinned to its lower bound (`make floors`); torch and torchvision keep their
ranges (an old PyTorch brings GBs of old CUDA libraries). By hand, as uv's `--resolution lowest-direct` would pin torch
too and fetch a CUDA build from PyPI, and pip has no lowest-versions mode.

    python scripts/floor_requirements.py [requirements.txt]"""

import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


def floor_pin(line: str) -> str:
    """`name==lower bound`, or the line as it is for torch and torchvision."""
    requirement = Requirement(line)
    lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    if requirement.name in ("torch", "torchvision"):
        return line.replace(" ", "")
    if not lowest:
        raise ValueError(f"{line} has no lower bound (>=): give it one, so that its floor is checked")
    return f"{requirement.name}=={lowest[0]}"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "requirements.txt"
    try:
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        print("\n".join(floor_pin(line) for line in lines if line))
    except (OSError, ValueError, InvalidRequirement) as error:
        sys.exit(f"error: {error}")
