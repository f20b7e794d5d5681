"""Export the trained DigitCNN for the static page (`make html`), batch norm folded, with the notebook's constants.

    python scripts/export_weights.py outputs/digit_cnn_tuned.pt assets/digit_cnn_weights.js   (make run, make assets)
    python scripts/export_weights.py --constants-only assets/digit_cnn_weights.js   (renew only the constants)"""

import argparse
import sys
from pathlib import Path

WEIGHTS_FILE = Path(__file__).resolve().parents[1] / "assets" / "digit_cnn_weights.js"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint the notebook saved (--constants-only: the target)")
    parser.add_argument("target", nargs="?", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--constants-only", action="store_true", help="keep the file's weights, renew its constants")
    parser.error = lambda message: sys.exit(f"error: {message}")  # one line, status 1, as every failure here
    args = parser.parse_args(argv)
    checkpoint, target = (None, args.checkpoint) if args.constants_only else (args.checkpoint, args.target)
    try:  # every failure, an unexpected one too, as one line: the checkpoint or the notebook is the user's own
        from handwritten_digits.weights import export_weights

        exported = export_weights(checkpoint, target)
    except Exception as error:
        sys.exit(f"error: {' '.join(line.strip() for line in str(error).splitlines()) or type(error).__name__}")
    count = sum(weight.size + bias.size for weight, bias in exported["arrays"].values())
    print(f"wrote {target} ({count:,} numbers, {target.stat().st_size / 1e3:.0f} kB) from {checkpoint or target}")


if __name__ == "__main__":
    main()
