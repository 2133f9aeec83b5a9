"""``python -m agentmesh``: the ``agentmesh`` command, for environments whose scripts folder is not on PATH."""

from agentmesh.cli.app import main

if __name__ == "__main__":
    main()
