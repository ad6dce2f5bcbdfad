#!/usr/bin/env node
/** `pulumi-netns`: working a lab's hosts from the shell. */
import { capture, CAPTURE_HELP, parseCaptureArgs } from "./capture";
import { exec, EXEC_HELP, parseExecArgs } from "./exec";
import { graph, GRAPH_HELP, parseGraphArgs } from "./graph";
import { inspect, INSPECT_HELP, parseInspectArgs } from "./inspect";
import { parseSweepArgs, sweep, SWEEP_HELP } from "./sweep";
import { UsageError } from "./usage";

const write = (text: string) => process.stdout.write(text);

interface Command {
  summary: string;
  help: string;
  run(args: string[]): Promise<number>;
  /** The exit code of its own failures: exec and capture pass their command's on, and keep 255 for theirs, as ssh does. */
  failure: number;
}

const COMMANDS: Record<string, Command> = {
  inspect: {
    summary: "every node (host, namespace, interfaces, services) and segment (kind, hosts, VNI, up/down)",
    help: INSPECT_HELP,
    run: (args) => inspect(parseInspectArgs(args), write),
    failure: 1,
  },
  exec: {
    summary: "run a command, or a shell, in a node's namespace on its host",
    help: EXEC_HELP,
    run: (args) => exec(parseExecArgs(args)),
    failure: 255,
  },
  capture: {
    summary: "tcpdump on a node's interface, pcap to the output (| wireshark -k -i -) or a file",
    help: CAPTURE_HELP,
    run: (args) => capture(parseCaptureArgs(args)),
    failure: 255,
  },
  graph: {
    summary: "a Lab as a picture: Graphviz DOT, Mermaid or SVG",
    help: GRAPH_HELP,
    run: (args) => graph(parseGraphArgs(args), write),
    failure: 1,
  },
  sweep: {
    summary: "list (and with --yes remove) what a stack left on its hosts that its state forgot",
    help: SWEEP_HELP,
    run: (args) => sweep(parseSweepArgs(args), (line) => write(`${line}\n`)),
    failure: 1,
  },
};

const HELP = `pulumi-netns COMMAND [options]

Works a stack's labs from the shell: the stack is the Pulumi project's in the current directory (or
--cwd DIR), the selected one (or --stack NAME), read through the Pulumi CLI.

${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(8)} ${command.summary}`)
  .join("\n")}

pulumi-netns COMMAND --help for a command's options.
`;

/** Whether help is asked for: --help or -h before any `--` (after it, the words are a command's). */
const asksForHelp = (args: string[]) =>
  args.slice(0, args.includes("--") ? args.indexOf("--") : undefined).some((arg) => arg === "--help" || arg === "-h");

async function main(command: Command | undefined, name: string | undefined, args: string[]): Promise<number> {
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    write(HELP);
    return name === undefined ? 2 : 0;
  }
  if (!command) throw new UsageError(`unknown command "${name}"`);
  if (asksForHelp(args)) {
    write(command.help);
    return 0;
  }
  return command.run(args);
}

const [name, ...args] = process.argv.slice(2);
const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
main(command, name, args).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`pulumi-netns: ${err.message}\n\n${command?.help ?? HELP}`);
      process.exit(2);
    }
    process.stderr.write(`pulumi-netns: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(command?.failure ?? 1);
  },
);
