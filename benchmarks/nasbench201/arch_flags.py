"""The architecture flags shared by the NAS-Bench-201 scripts: the official string, or one op per edge."""
import argparse

from .encoding import HP_NAMES, OPS, ArchitectureError, config_to_string, ops_to_string, string_to_ops


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """`--arch` and `--x0` .. `--x5`."""
    group = parser.add_argument_group("architecture (the official string, or one op per edge)")
    group.add_argument("--arch", type=str, default=None,
                       help="official string such as '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
                            "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'")
    for name in HP_NAMES:
        group.add_argument(f"--{name}", type=str, default=None, help=f"op of edge {name}: {', '.join(OPS)}")


def resolve_arch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The official string of the architecture given by `--arch` and/or `--x0..--x5` (parser.error otherwise)."""
    edges = {name: getattr(args, name) for name in HP_NAMES if getattr(args, name) is not None}
    from_string = from_edges = None
    if args.arch is not None:
        try:
            from_string = ops_to_string(string_to_ops(args.arch))
        except ArchitectureError as err:
            parser.error(str(err))
    if edges:
        missing = [f"--{name}" for name in HP_NAMES if name not in edges]
        if missing:
            parser.error(f"The architecture lacks {', '.join(missing)}; give all of --x0 to --x5 or an --arch "
                         f"string.")
        try:
            from_edges = config_to_string(edges)
        except ArchitectureError as err:
            parser.error(str(err))
    if from_string is None and from_edges is None:
        parser.error("No architecture given; pass --arch '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' or --x0 to --x5.")
    if from_string is not None and from_edges is not None and from_string != from_edges:
        parser.error(f"--arch {args.arch!r} and --x0..--x5 (which give {from_edges!r}) name different "
                     f"architectures; pass one of them, or both equal.")
    return from_string or from_edges  # type: ignore[return-value]
