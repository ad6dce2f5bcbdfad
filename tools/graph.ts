/**
 * A picture of a lab: renders its topology to SVG with Graphviz.
 *
 *   npm run graph -- PROGRAM_DIR [--stack NAME] [--out FILE.svg]   the stack output `topologyDot` of a program
 *   npm run graph -- --dot FILE.dot [--out FILE.svg]               a DOT file as it is
 *
 * Without --out the picture is topology.svg in the program directory, or FILE.svg beside the DOT file.
 * Relative paths are taken from where npm was started, not from the package root npm runs scripts in.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { requirePulumiCli } from "../test/harness/pulumiWorkdir";

const USAGE = "usage: npm run graph -- PROGRAM_DIR [--stack NAME] [--out FILE.svg]  |  npm run graph -- --dot FILE.dot [--out FILE.svg]";

function fail(message: string): never {
  process.stderr.write(`graph: ${message}\n`);
  process.exit(1);
}

function parseArgs(args: string[]): { program?: string; dotFile?: string; stack?: string; out?: string } {
  const options: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = /^--(dot|stack|out)$/.exec(args[i]);
    if (flag) {
      if (args[i + 1] === undefined) fail(`${args[i]} needs a value\n${USAGE}`);
      options[flag[1]] = args[++i];
    } else if (args[i].startsWith("-")) fail(`unknown option ${args[i]}\n${USAGE}`);
    else positional.push(args[i]);
  }
  if (positional.length > 1 || (positional.length === 1) === (options.dot !== undefined)) fail(USAGE);
  return { program: positional[0], dotFile: options.dot, stack: options.stack, out: options.out };
}

/** The stack output `topologyDot`: a Lab's `topologyDot`, exported by the program under that name. */
function stackDot(program: string, stack?: string): string {
  try {
    requirePulumiCli();
  } catch (err) {
    fail((err as Error).message);
  }
  const args = ["stack", "output", "topologyDot", "--cwd", program, "--non-interactive", ...(stack ? ["--stack", stack] : [])];
  const result = spawnSync("pulumi", args, { encoding: "utf8" });
  if (result.status !== 0) {
    fail(`pulumi ${args.join(" ")} failed:\n${result.stderr.trim()}\nThe program must export the lab's DOT text as "topologyDot".`);
  }
  return result.stdout;
}

function main(): void {
  const from = (path: string) => resolve(process.env.INIT_CWD ?? process.cwd(), path);
  const { program, dotFile, stack, out } = parseArgs(process.argv.slice(2));
  const dot = dotFile ? readFileSync(from(dotFile), "utf8") : stackDot(from(program!), stack);
  const target = out ? from(out) : dotFile ? from(dotFile).replace(/(\.dot|\.gv)?$/, ".svg") : join(from(program!), "topology.svg");
  const render = spawnSync("dot", ["-Tsvg", "-o", target], { input: dot, encoding: "utf8" });
  if ((render.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") fail("`dot` is missing: install graphviz (scripts/prerequisites.sh installs it)");
  if (render.status !== 0) fail(`dot could not render the topology:\n${render.stderr.trim()}`);
  process.stdout.write(`${target}\n`);
}

main();
