#!/usr/bin/env node
/** `pulumi-netns`: working a lab's hosts from the shell. */
import { parseSweepArgs, sweep, SWEEP_HELP } from "./sweep";
import { UsageError } from "./usage";

const HELP = `pulumi-netns COMMAND [options]

  sweep    list (and with --yes remove) what a stack left on its hosts that its state forgot

pulumi-netns COMMAND --help for a command's options.
`;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command !== "sweep") throw new UsageError(`unknown command "${command}"`);
  if (rest.includes("--help")) {
    process.stdout.write(SWEEP_HELP);
    return 0;
  }
  return sweep(parseSweepArgs(rest), (line) => process.stdout.write(`${line}\n`));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`pulumi-netns: ${err.message}\n\n${process.argv[2] === "sweep" ? SWEEP_HELP : HELP}`);
      process.exit(2);
    }
    process.stderr.write(`pulumi-netns: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
