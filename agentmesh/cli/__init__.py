"""The ``agentmesh`` command line: run, inspect and manage stored runs and models."""

from agentmesh.cli.app import app, main

__all__ = ["app", "main"]
