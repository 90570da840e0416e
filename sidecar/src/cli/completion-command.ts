// st completion bash|zsh|fish: a completion script made from the command tree
// itself, so it never lists a command or flag that does not exist.

import { Argument, type Command } from "commander";

function words(command: Command): string[] {
  return [...command.commands.map((c) => c.name()), ...command.options.filter((o) => !o.hidden).map((o) => o.long ?? o.short ?? "")].filter(Boolean);
}

/** Every command path ("", "daemon", "daemon start", ...) with the words that may follow it. */
function table(program: Command): Array<[string, string[]]> {
  const rows: Array<[string, string[]]> = [];
  const visit = (command: Command, path: string[]) => {
    rows.push([path.join(" "), words(command)]);
    for (const sub of command.commands) visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
  return rows;
}

function bash(program: Command): string {
  const cases = table(program)
    .map(([path, list]) => `    "${path}") opts="${list.join(" ")}" ;;`)
    .join("\n");
  return `# st completion for bash: eval "$(st completion bash)"
_st_complete() {
  local cur path="" i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) path="\${path:+\$path }\${COMP_WORDS[i]}" ;; esac
  done
  local opts=""
  case "\$path" in
${cases}
  esac
  COMPREPLY=( $(compgen -W "\$opts" -- "\$cur") )
}
complete -o default -F _st_complete st
`;
}

function zsh(program: Command): string {
  return `#compdef st
# st completion for zsh: eval "$(st completion zsh)"
autoload -U bashcompinit && bashcompinit
${bash(program)}`;
}

function fish(program: Command): string {
  const lines = ["# st completion for fish: st completion fish | source"];
  for (const [path, list] of table(program)) {
    const parts = path === "" ? [] : path.split(" ");
    const condition = parts.length === 0 ? "__fish_use_subcommand" : `__fish_seen_subcommand_from ${parts.at(-1)!}`;
    for (const word of list) {
      lines.push(word.startsWith("--") ? `complete -c st -n '${condition}' -l ${word.slice(2)}` : `complete -c st -f -n '${condition}' -a ${word}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command("completion")
    .addArgument(new Argument("<shell>", "the shell").choices(["bash", "zsh", "fish"]))
    .description("print a shell completion script")
    .action((shell: "bash" | "zsh" | "fish") => {
      process.stdout.write(shell === "bash" ? bash(program) : shell === "zsh" ? zsh(program) : fish(program));
    });
}
