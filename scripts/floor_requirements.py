"""Print requirements.txt with every package pinned to the lowest version its range allows (`make floors`).

torch and torchvision keep their ranges: the floor check runs with the build that `make` installs, since an old
PyTorch brings old CUDA libraries of several GB and is not what the floors of the other packages are about.

    python scripts/floor_requirements.py [requirements.txt]
"""

import re
import sys
from pathlib import Path

KEEP_RANGE = {"torch", "torchvision"}
LINE = re.compile(r"^(?P<name>[A-Za-z0-9_.\-\[\]]+)\s*(?P<spec>[^#]*?)\s*(#.*)?$")


def floor_pins(text: str) -> list[str]:
    """`name==lowest` for each requirement (the range as it is for torch and torchvision); an error when a
    requirement has no lower bound, since then there is no floor to check."""
    pins = []
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if not line.strip() or line.strip().startswith("#") or not match:
            continue
        name, spec = match["name"], match["spec"].replace(" ", "")
        if name.lower() in KEEP_RANGE:
            pins.append(f"{name}{spec}")
            continue
        lowest = re.search(r">=([^,]+)", spec)
        if not lowest:
            raise ValueError(f"{name}{spec} has no lower bound (>=): give it one, so that the floor can be checked")
        pins.append(f"{name}=={lowest[1]}")
    return pins


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "requirements.txt"
    try:
        print("\n".join(floor_pins(path.read_text())))
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main(sys.argv)
