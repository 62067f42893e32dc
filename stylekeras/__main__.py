"""`python -m stylekeras …`: the `stylekeras` command."""
from stylekeras.cli import app

app(prog_name="stylekeras")
