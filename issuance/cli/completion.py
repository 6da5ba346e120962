"""`mynacard completion bash|zsh`: a completion script written from the argparse tree.

Hand-written rather than a dependency: the tree is walked once and every command path
gets its sub-commands and options as a word list, so the script never runs Python
while the operator types.
"""

from __future__ import annotations

import argparse
from typing import Any


def words(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    """For each command path ("" is the root): the sub-commands and options it takes."""
    out: dict[str, list[str]] = {}
    mine: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                mine.append(name)
                out.update(words(sub, f"{path} {name}".strip()))
        elif action.help is not argparse.SUPPRESS:
            mine += [o for o in action.option_strings if o.startswith("--")]
    out[path] = sorted(set(mine))
    return out


def bash_script(tree: dict[str, list[str]]) -> str:
    cases = "\n".join(f'        "{path}") opts="{" ".join(ws)}" ;;'
                      for path, ws in sorted(tree.items()))
    return f"""# mynacard bash completion: eval "$(mynacard completion bash)"
_mynacard() {{
    local cur path w opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    path=""
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$w" in -*) ;; *) case " $(_mynacard_words "${{path:+$path }}$w") " in
            "  ") ;; *) path="${{path:+$path }}$w" ;; esac ;; esac
    done
    opts="$(_mynacard_words "$path")"
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}}
_mynacard_words() {{
    local opts=""
    case "$1" in
{cases}
    esac
    echo "$opts"
}}
complete -o default -F _mynacard mynacard
"""


def zsh_script(tree: dict[str, list[str]]) -> str:
    return ("#compdef mynacard\n# mynacard zsh completion: eval \"$(mynacard completion zsh)\"\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(tree))


def cmd_completion(args: argparse.Namespace) -> int:
    from issuance.cli.main import build_parser

    tree = words(build_parser())
    print(bash_script(tree) if args.shell == "bash" else zsh_script(tree), end="")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("completion", help="print a shell completion script",
                              description="Print a completion script for bash or zsh; "
                                          'load it with eval "$(mynacard completion bash)".')
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(func=cmd_completion, changes=False, needs_home=False, roles="*",
                   reports=False)  # prints a script, not a result
