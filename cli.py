"""`python cli.py …` from a checkout runs the `stylekeras` command (the package's `stylekeras/cli.py`)."""
from stylekeras.cli import main

if __name__ == "__main__":
    main()
