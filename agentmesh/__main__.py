"""``python -m agentmesh``: the ``agentmesh`` command, for environments whose scripts folder is not on PATH."""

from agentmesh.cli import main  # (the light entry: Ctrl-C during the imports is caught there)

if __name__ == "__main__":
    main()
