"""`python -m asbx` entry point."""

from asbx.cli.main import main

if __name__ == "__main__":
    main()
