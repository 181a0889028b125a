"""The IPython cell magic `%%circuit NAME [--target T] [--dtype D] [--wrt A,B] [--fix A,B] [-D N=INT]`.

`%load_ext circuitc` registers it. The cell's text is compiled as a `Circuit` (named
`<NAME>` in messages), bound to NAME in the user's namespace and displayed. The
options are the command line's, parsed by the same click options; a bad option is an
IPython `UsageError` and a bad circuit its diagnostic, neither with a traceback.
"""

from __future__ import annotations

import shlex

import click
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import display

from .cli.options import DTYPE, FIX, SEED, SIZES, TARGET, WRT, check_dtype
from .notebook import Circuit


@click.command(name="%%circuit", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@TARGET
@DTYPE
@WRT
@FIX
@SIZES
@SEED
def _options(name: str, target_name: str, dtype: str, wrt, fix, sizes, seed: int) -> dict:
    """Compile the cell's circuit and bind it to NAME."""
    if not name.isidentifier():
        raise click.BadParameter(f"{name!r} is not a Python name", param_hint="NAME")
    check_dtype(target_name, dtype)
    return {"name": name, "target": target_name, "dtype": dtype, "wrt": wrt, "fix": fix,
            "sizes": sizes, "seed": seed}


@magics_class
class CircuitMagics(Magics):
    @cell_magic
    def circuit(self, line: str, cell: str):
        """%%circuit NAME [--target T] [--dtype D] [--wrt A,B] [--fix A,B] [-D N=INT]
        [--seed N]: compile the cell's circuit, bind it to NAME and show it
        (`circuitc.circuit`)."""
        try:
            options = _options.main(shlex.split(line), prog_name="%%circuit",
                                    standalone_mode=False)
        except click.ClickException as e:
            raise UsageError(e.format_message()) from None
        except ValueError as e:  # shlex: an unclosed quote
            raise UsageError(f"{line.strip()!r}: {e}") from None
        if not isinstance(options, dict):  # --help, which click has printed
            return
        name = options.pop("name")
        circuit = Circuit(cell, f"<{name}>", name=name, **options)
        self.shell.user_ns[name] = circuit
        display(circuit)


def register(ipython) -> None:
    ipython.register_magics(CircuitMagics)
