"""Providers: the wire-level half of model access (client, auth, base URL, in-process engine).

Each provider answers one attempt of one call; limits, retries, usage estimates, cost and recording are the
:class:`~agentmesh.models.client.ModelClient`'s job, shared by all of them.
"""

from agentmesh.models.providers.base import Provider

__all__ = ["Provider"]
