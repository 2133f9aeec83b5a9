"""``agentmesh models``: what model references resolve to, before any call is made."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from agentmesh.cli._common import ConfigOption, JsonOption, console
from agentmesh.errors import AgentmeshError
from agentmesh.models import get_model, load_settings
from agentmesh.store._redact import mask_secrets


def models(
    refs: Annotated[list[str] | None, typer.Argument(help="References or aliases (default: local + aliases).")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show provider, model, endpoint, key variable (never the key), limits and price of each reference."""
    settings = load_settings(config)
    names = refs or ["local", *settings.aliases]
    rows: list[dict[str, Any]] = []
    for name in names:
        try:
            # described even without its key (which variable it reads, limits, price); a run refuses to start
            client = get_model(name, settings=settings, require_key=False)
        except AgentmeshError as exc:
            # a reference refused for the password in its URL must not print it back (a CI log keeps it): its
            # error masks it, and so does the row's own reference
            rows.append({"reference": mask_secrets(name), "error": str(exc)})
            continue
        info = client.describe()
        if name != info["reference"]:
            info["alias"] = name
        rows.append(info)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="model references", show_lines=True)
    for col in ("reference", "resolves to", "limits", "price / key"):
        table.add_column(col, overflow="fold")
    for row in rows:
        if "error" in row:
            table.add_row(Text(row["reference"]), Text(str(row["error"]), style="red"), "", "")
            continue
        target = f"{row['provider']} · {row['model']}\n{row.get('file') or row['endpoint']}"
        if "n_ctx" in row:  # an in-process model's window: what a prompt over it is refused against
            target += f"\ncontext window {row['n_ctx']} tokens"
        limits = ", ".join(
            f"{k}={v}"
            for k, v in row["limits"].items()
            if k in {"max_concurrency", "rpm", "tpm", "timeout_s", "max_retries"}
        )
        price = str(row["price"]) + (f"\nkey: {row['api_key']}" if "api_key" in row else "")
        label = row["reference"] + (f"\n(alias {row['alias']})" if "alias" in row else "")
        table.add_row(Text(label), Text(target), Text(limits), Text(price))
    console.print(table)
