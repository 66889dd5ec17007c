#!/usr/bin/env python3
"""Build the tiny trained 4-bit MLX test model (see ``scripts.tiny_model.build``) into OUT_DIR."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from scripts.tiny_model.build import build_tiny_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path, help="directory to create (must not exist or be empty)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data, init and batch order")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the loss every 50 steps")
    parser.add_argument(
        "--vision", action="store_true", help="build the tiny Gemma 3 vision model instead (scripts.tiny_model.vision)"
    )
    args = parser.parse_args(argv)

    def log(step: int, loss: float, *accuracy: float) -> None:
        if step % 50 == 0:
            shown = f"  answers right {accuracy[0]:.2f}" if accuracy else ""
            print(f"step {step:4d}  loss {loss:.4f}{shown}", flush=True)

    start = time.perf_counter()
    if args.vision:
        from scripts.tiny_model.vision import build_tiny_vision_model

        kwargs = {} if args.steps is None else {"steps": args.steps}
        path = build_tiny_vision_model(args.out_dir, seed=args.seed, log=log if args.verbose else None, **kwargs)
    else:
        path = build_tiny_model(args.out_dir, seed=args.seed, steps=args.steps, log=log if args.verbose else None)
    print(f"built {path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
