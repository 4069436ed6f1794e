"""ladderflow: source videos in, streamable titles (CMAF, HLS, DASH) out.

    python -m pipeline --input 'in/*.mp4' --output out/
    python -m pipeline demo --output out/        # makes a 30 s 1080p source and runs it

Any standard Beam flag (--runner, --direct_num_workers, ...) passes through; a flag that
neither ladderflow nor Beam knows stops the run before anything starts (exit status 2).
"""

from __future__ import annotations

import logging
import os
import sys

from media.core.errors import ConfigurationError, LadderflowError

DEMO_PRESET = ["--preset", "veryfast"]


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("apache_beam", "google", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _output_of(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--output" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
    return None


def _print_help() -> None:
    import argparse

    from pipeline.options import LadderflowOptions

    parser = argparse.ArgumentParser(
        prog="python -m pipeline", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Beam's own flags (--runner, --direct_num_workers, --direct_running_mode, "
               "--temp_location, ...) pass through to the runner; a flag that neither "
               "knows is refused.")
    LadderflowOptions._add_argparse_args(parser)
    parser.print_help()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _print_help()
        return 0
    _setup_logging()
    from pipeline import launcher
    from pipeline.options import refuse_unknown_flags

    try:
        passed_on = refuse_unknown_flags(argv[1:] if argv and argv[0] == "demo" else argv)
        if passed_on:
            logging.getLogger("pipeline").warning(
                "options for the job server (neither ladderflow nor Beam's Python SDK knows "
                "them; the job server checks them): %s", ", ".join(passed_on))
        if argv and argv[0] == "demo":
            from pipeline.demo import make_demo_source

            output = _output_of(argv[1:])
            if not output:
                raise ConfigurationError("demo needs --output DEST")
            source = make_demo_source(os.path.join(output, "_demo"))
            # A quick look by default; any --preset the user gives wins.
            preset = [] if any(a.startswith("--preset") for a in argv) else DEMO_PRESET
            return launcher.run([*preset, *argv[1:], "--input", source])
        return launcher.run(argv)
    except LadderflowError as exc:
        print(f"error: {exc}\nhint: {exc.hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
