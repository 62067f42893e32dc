"""`python -m stylekeras …`: the `stylekeras` command."""
from stylekeras.cli import main

main()
