/**
 * `pulumi-netns graph`: a Lab of the stack as a picture, drawn from what the stack made (sdk/lab/graph.ts
 * draws it): Graphviz DOT, Mermaid, or SVG rendered by Graphviz's `dot` on this machine.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { topologyDot, topologyMermaid } from "../sdk/lab/graph";
import { choice, noMoreOperands, onlyValue, parseArgs } from "./args";
import { readExistingStack, STACK_HELP, STACK_OPTIONS, stackOptions, StackOptions } from "./stack";
import { Topology, topologyOf } from "./topology";
import { UsageError } from "./usage";

export const GRAPH_HELP = `pulumi-netns graph [--stack NAME] [--cwd DIR] [--lab NAME] [--format dot|mermaid|svg] [-o FILE]

Draws a Lab of the stack as the stack made it: hosts as boxes around their nodes, routers bold, LANs as
ellipses, links and LAN members as edges labelled with interface and address; what crosses hosts is
dashed with its VNI, an impaired link says its impairment, a pulled cable is dotted and says "down".
DOT renders with Graphviz, Mermaid in GitHub Markdown; svg runs Graphviz's \`dot\` here (apt-get install
graphviz).

${STACK_HELP}
  --lab NAME           the Lab to draw, when the stack has several
  --format FORMAT      dot (default), mermaid or svg
  -o, --output FILE    write the picture into FILE instead of the output
`;

const FORMATS = ["dot", "mermaid", "svg"] as const;

export interface GraphOptions extends StackOptions {
  lab?: string;
  format: (typeof FORMATS)[number];
  output?: string;
}

export function parseGraphArgs(args: string[]): GraphOptions {
  const parsed = parseArgs(args, {
    values: { ...STACK_OPTIONS.values, "--lab": "lab", "--format": "format", "-o": "output", "--output": "output" },
  });
  noMoreOperands(parsed, 0);
  return {
    ...stackOptions(parsed),
    lab: onlyValue(parsed, "lab", "--lab"),
    format: choice(parsed, "format", "--format", FORMATS, "dot"),
    output: onlyValue(parsed, "output", "--output"),
  };
}

/** The Lab to draw: the one named, or the stack's only one. */
export function labToDraw(topology: Topology, stack: string, name: string | undefined): Topology["labs"][number] {
  const names = topology.labs.map((lab) => lab.name);
  if (names.length === 0) {
    throw new Error(`stack ${stack} has no Lab: graph draws a Lab's topology (pulumi-netns inspect shows plain resources)`);
  }
  if (name === undefined && names.length > 1) {
    throw new UsageError(`stack ${stack} has ${names.length} Labs: name one with --lab (${names.join(", ")})`);
  }
  const lab = topology.labs.find((l) => l.name === (name ?? names[0]));
  if (!lab) throw new UsageError(`--lab ${name}: stack ${stack} has no such Lab (Labs: ${names.join(", ")})`);
  return lab;
}

/** DOT rendered to SVG by Graphviz. */
export function renderSvg(dot: string): string {
  const render = spawnSync("dot", ["-Tsvg"], { input: dot, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if ((render.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    throw new Error("`dot` is missing: install graphviz (scripts/prerequisites.sh installs it)");
  }
  if (render.status !== 0) throw new Error(`dot could not render the topology:\n${render.stderr.trim()}`);
  return render.stdout;
}

export async function graph(options: GraphOptions, write: (text: string) => void): Promise<number> {
  const { owner, state } = await readExistingStack(options);
  const { plan } = labToDraw(topologyOf(state), owner, options.lab);
  const pictures = { dot: () => topologyDot(plan), mermaid: () => topologyMermaid(plan), svg: () => renderSvg(topologyDot(plan)) };
  const picture = pictures[options.format]();
  if (options.output === undefined) write(picture);
  else writeFileSync(options.output, picture);
  return 0;
}
