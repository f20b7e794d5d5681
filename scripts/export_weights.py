"""Export DigitCNN for the static page: batch norm folded into its convolutions, with the notebook's constants.

The page (`make html`) reads digits in the reader's browser with no Python running: web/digit_cnn.js runs the network
from the file written here, and web/mnist_style.js applies the notebook's mnist_style with the constants written here.
Run by `make run` after training and by `make assets`; docs/static-page.md explains the folding.

    python scripts/export_weights.py outputs/digit_cnn_tuned.pt assets/digit_cnn_weights.js
    python scripts/export_weights.py --constants-only assets/digit_cnn_weights.js   (no checkpoint: constants only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handwritten_digits.weights import export_weights, refresh_constants

WEIGHTS_FILE = Path(__file__).resolve().parents[1] / "assets" / "digit_cnn_weights.js"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", type=Path,
                        help="a checkpoint saved by the notebook (digit_cnn_tuned.pt, the page's network)")
    parser.add_argument("target", nargs="?", type=Path, default=WEIGHTS_FILE)
    parser.add_argument("--constants-only", action="store_true",
                        help="keep the weights of TARGET (given as the only path) and rewrite the notebook's constants")
    args = parser.parse_args(argv)
    try:
        if args.constants_only:
            target = args.checkpoint or args.target
            changed = refresh_constants(target)
            print(f"{target}: the notebook's constants {'rewritten' if changed else 'were already current'}")
            return
        if args.checkpoint is None:
            parser.error("give the checkpoint to export (e.g. outputs/digit_cnn_tuned.pt), or --constants-only")
        exported = export_weights(args.checkpoint, args.target)
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    count = sum(weight.size + bias.size for weight, bias in exported["arrays"].values())
    print(f"wrote {args.target} ({count:,} numbers, {args.target.stat().st_size / 1e3:.0f} kB) from {args.checkpoint}")


if __name__ == "__main__":
    main()
