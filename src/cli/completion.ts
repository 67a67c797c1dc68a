import { Argument, Command } from "commander";
import type { CliIo } from "./io.js";

/** CompletionNode is one command path with what may follow it. */
interface CompletionNode {
  path: string;
  subcommands: string[];
  options: string[];
}

/** completionTree walks the command tree (curated and generated) into paths with their words. */
export function completionTree(root: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (cmd: Command, path: string[]) => {
    nodes.push({
      path: path.join(" "),
      subcommands: cmd.commands.map((c) => c.name()),
      options: cmd.options
        .filter((o) => !o.hidden)
        .flatMap((o) => (o.long === undefined ? [] : [o.long])),
    });
    for (const c of cmd.commands) visit(c, [...path, c.name()]);
  };
  visit(root, []);
  return nodes;
}

function caseTable(nodes: CompletionNode[], indent: string): string {
  return nodes
    .map(
      (n) =>
        `${indent}"${n.path}") echo "${[...n.subcommands, ...n.options].join(" ")}" ;;`,
    )
    .join("\n");
}

// The shell side: walk the words typed so far, keeping the longest known
// command path; offer its subcommands and options.
function bash(nodes: CompletionNode[]): string {
  return `# palyra bash completion: eval "$(palyra completion bash)"
_palyra_words() {
  case "$1" in
${caseTable(nodes, "    ")}
    *) return 1 ;;
  esac
}
_palyra() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" i w next
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    next="\${cmdpath:+$cmdpath }$w"
    if _palyra_words "$next" >/dev/null; then cmdpath="$next"; fi
  done
  COMPREPLY=($(compgen -W "$(_palyra_words "$cmdpath")" -- "$cur"))
}
complete -F _palyra palyra
`;
}

function zsh(nodes: CompletionNode[]): string {
  return `#compdef palyra
# palyra zsh completion: palyra completion zsh > "\${fpath[1]}/_palyra"
_palyra_words() {
  case "$1" in
${caseTable(nodes, "    ")}
    *) return 1 ;;
  esac
}
_palyra() {
  local cmdpath="" w next
  for w in "\${(@)words[2,CURRENT-1]}"; do
    [[ "$w" == -* ]] && continue
    next="\${cmdpath:+$cmdpath }$w"
    if _palyra_words "$next" >/dev/null; then cmdpath="$next"; fi
  done
  local -a candidates
  candidates=(\${=$(_palyra_words "$cmdpath")})
  compadd -- $candidates
}
compdef _palyra palyra
`;
}

function fish(nodes: CompletionNode[]): string {
  return `# palyra fish completion: palyra completion fish | source
function __palyra_words
  switch "$argv[1]"
${nodes.map((n) => `    case "${n.path}"\n      echo ${[...n.subcommands, ...n.options].join(" ")}`).join("\n")}
    case '*'
      return 1
  end
end
function __palyra_complete
  set -l cmdpath ""
  for w in (commandline -opc)[2..-1]
    string match -q -- '-*' $w; and continue
    set -l next (string trim -- "$cmdpath $w")
    if __palyra_words "$next" >/dev/null
      set cmdpath $next
    end
  end
  string split ' ' -- (__palyra_words "$cmdpath")
end
complete -c palyra -f -a '(__palyra_complete)'
`;
}

/** completionCommand is `palyra completion bash|zsh|fish`: a script that knows every command, generated ones included. */
export function completionCommand(root: Command, io: CliIo): Command {
  return new Command("completion")
    .description("print a shell completion script (bash, zsh or fish)")
    .addArgument(new Argument("<shell>").choices(["bash", "zsh", "fish"]))
    .action((shell: string) => {
      const nodes = completionTree(root);
      io.out(
        shell === "bash"
          ? bash(nodes)
          : shell === "zsh"
            ? zsh(nodes)
            : fish(nodes),
      );
    });
}
