"""Print requirements.txt with every package pinned to the lowest version its range allows (`make floors`).

torch and torchvision keep their ranges: the floor check runs with the build that `make` installs, since an old
PyTorch brings old CUDA libraries of several GB and is not what the floors of the other packages are about.
A lower bound is `>=`, `~=` (compatible release: `~= 1.24` allows 1.24 and later 1.x), `==` or `===`; the
requirements are read with the `packaging` library (installed with pytest in the project's environment).

    python scripts/floor_requirements.py [requirements.txt]
"""

import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

KEEP_RANGE = {"torch", "torchvision"}
LOWER_BOUNDS = (">=", "~=", "==")  # and "===", an exact string that is kept as it is


def floor_pin(requirement: Requirement) -> str:
    """`name==lowest` (with its extras and marker); an error when the requirement has no lower bound, since then
    there is no floor to check, or when its own specifiers exclude the bound."""
    name = requirement.name + (f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else "")
    marker = f"; {requirement.marker}" if requirement.marker else ""
    exact = [spec.version for spec in requirement.specifier if spec.operator == "==="]
    if exact:
        return f"{name}==={exact[0]}{marker}"
    try:
        bounds = [Version(spec.version.removesuffix(".*")) for spec in requirement.specifier
                  if spec.operator in LOWER_BOUNDS]
    except InvalidVersion as error:
        raise ValueError(f"{requirement}: {error}") from error
    if not bounds:
        raise ValueError(f"{requirement} has no lower bound (>=, ~= or ==): give it one, so that the floor can be "
                         "checked")
    lowest = max(bounds)  # with several bounds, the highest is the lowest version that all of them allow
    if not requirement.specifier.contains(lowest, prereleases=True):
        raise ValueError(f"{requirement} excludes its own lower bound {lowest}: give it a bound that it allows")
    return f"{name}=={lowest}{marker}"


def floor_pins(text: str) -> list[str]:
    """A floor pin for each requirement (the range as it is written for torch and torchvision)."""
    pins = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise ValueError(f"line {number}, {line!r}, is not a requirement: {str(error).splitlines()[0]}") from error
        if requirement.name.lower() in KEEP_RANGE:
            pins.append(line.replace(" ", ""))
        else:
            pins.append(floor_pin(requirement))
    return pins


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "requirements.txt"
    try:
        print("\n".join(floor_pins(path.read_text())))
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main(sys.argv)
