"""Entry script of the frozen desktop agent: ``agent_kit.cli:main``, as the console script."""

from agent_kit.cli import main

if __name__ == "__main__":
    main()
