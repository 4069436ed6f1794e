"""Dataflow Flex Template entry point: runs the pipeline as `python -m pipeline` does.

The image's FLEX_TEMPLATE_PYTHON_PY_FILE names this file. Dataflow's Python template
launcher runs it with each template parameter as `--name=value` (plus the runner,
project, region and staging flags). Our on/off options (`--no_vmaf`, `--keep_work`) are
argparse flags that take no value, so `--no_vmaf=true` would be refused: they are
turned into `--no_vmaf`, and `--no_vmaf=false` is dropped. Every other argument passes
through unchanged.
"""

from __future__ import annotations

import argparse
import sys

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


def _flag_names() -> set[str]:
    """Names of the LadderflowOptions that take no value (store_true)."""
    from pipeline.options import LadderflowOptions

    parser = argparse.ArgumentParser(add_help=False)
    LadderflowOptions._add_argparse_args(parser)
    return {
        action.option_strings[0][2:]
        for action in parser._actions
        if action.option_strings and action.nargs == 0 and action.const is True
    }


def flex_argv(argv: list[str]) -> list[str]:
    """`argv` with `--flag=true` as `--flag` and `--flag=false` left out, for our flags."""
    flags = _flag_names()
    result = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if sep and name.startswith("--") and name[2:] in flags:
            if value.lower() in _TRUE:
                result.append(name)
                continue
            if value.lower() in _FALSE:
                continue
        result.append(arg)  # anything else is argparse's to accept or refuse
    return result


def main(argv: list[str] | None = None) -> int:
    from pipeline.__main__ import main as pipeline_main

    return pipeline_main(flex_argv(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
