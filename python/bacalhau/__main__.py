"""`python -m bacalhau`: the same CLI as the `bacalhau` command."""

from bacalhau.cli.main import main

if __name__ == "__main__":
    main()
