"""`lakelens token`: make API tokens with scopes for `server.tokens` in lakelens.yaml."""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(
    help="API tokens with scopes (ingest, read, admin) for the server.", no_args_is_help=True
)


@app.command()
def create(
    scope: list[str] = typer.Option(
        [],
        "--scope",
        "-s",
        help="What the token may do: ingest (send events), read (dashboard and GET API), "
        "admin (act on incidents). Repeat for more than one.",
    ),
    name: Optional[str] = typer.Option(  # noqa: UP045
        None, "--name", "-n", help="Its name in lakelens.yaml and in log lines (default: scopes)."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print {name, token, hash, scopes, yaml} as JSON."
    ),
) -> None:
    """Print a new random token ONCE, and the lakelens.yaml entry (its hash) to paste.

    The token is not stored anywhere: copy it now into the pipeline's or the person's
    secret store. Add the entry under `server: tokens:` and restart the server.

    Example: lakelens token create --scope ingest --name airflow
    """
    from lakelens.cli._output import console, fail, print_json
    from lakelens.errors import InvalidArgumentError
    from lakelens.server.tokens import (
        SCOPES,
        check_name,
        hash_token,
        new_token,
        parse_scopes,
        yaml_entry,
    )

    try:
        scopes = parse_scopes(scope, "--scope")
        chosen = name if name is not None else "-".join(s for s in SCOPES if s in scopes)
        check_name(chosen)
    except InvalidArgumentError as exc:
        fail(str(exc), code=2)
        return
    token = new_token()
    hashed = hash_token(token)
    ordered = [s for s in SCOPES if s in scopes]
    snippet = yaml_entry(chosen, hashed, ordered)
    if json_output:
        print_json(
            {"name": chosen, "token": token, "hash": hashed, "scopes": ordered, "yaml": snippet}
        )
        return
    console.print(
        f"New token [bold]{chosen}[/] ({', '.join(ordered)}); it is shown this once, copy it now:",
        highlight=False,
    )
    console.print(f"\n  {token}\n", highlight=False, markup=False, soft_wrap=True)
    console.print("Add this to lakelens.yaml (only the hash) and restart the server:\n")
    console.print(snippet, highlight=False, markup=False, soft_wrap=True, end="")
