"""stylekeras.flags: library messages name Python parameters; the CLI spells them as flags."""

import pytest
import typer

from stylekeras.cli import app
from stylekeras.errors import StyleKerasError
from stylekeras.flags import command_flags, spell_flags
from stylekeras.stylize import TransferSettings


def _flags(command: str) -> dict[str, str]:
    group = typer.main.get_command(app)
    return command_flags(typer.Context(group.commands[command]))


def test_parameters_read_as_the_running_commands_flags():
    transfer = _flags("transfer")
    assert spell_flags("`tile` must be ≥ 1 px", transfer) == "--tile must be ≥ 1 px"
    assert spell_flags("use `tile=512` or `precision='mixed'`", transfer) == "use --tile 512 or --precision mixed"
    assert spell_flags("`weights='my weights.h5'`: no such file", transfer) == "--weights 'my weights.h5': no such file"
    assert spell_flags("`batch_size`, `style_layers`", transfer) == "--batch-size, --style-layers"
    assert spell_flags("`not_an_option` and `style_masks`", transfer) == "`not_an_option` and `style_masks`"
    assert spell_flags("`version` must be ≥ 1", _flags("export")) == "--model-version must be ≥ 1"


def test_library_errors_name_the_python_parameter():
    with pytest.raises(StyleKerasError) as error:
        TransferSettings(tile=0)
    assert str(error.value).startswith("`tile` must be") and "--" not in str(error.value)
