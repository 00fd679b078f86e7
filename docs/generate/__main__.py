"""``python -m docs.generate {config,api,dripctl}``: one reference document on stdout."""

from __future__ import annotations

import sys

from docs.generate import RENDERERS


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in RENDERERS:
        print(f"usage: python -m docs.generate {{{','.join(RENDERERS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(RENDERERS[args[0]]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
