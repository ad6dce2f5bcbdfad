/** A stack of a project copied into a Pulumi workdir, with its config set, for end-to-end tests. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigMap, EngineEvent, LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import type { PulumiWorkdir } from "./pulumiWorkdir";
import type { TestLab } from "./throwawayHosts";
import type { Program } from "./editDriver";

export async function projectStack(work: PulumiWorkdir, project: string, config: ConfigMap, source?: string) {
  const dir = work.copyProject(project, source);
  const stack = await LocalWorkspace.createStack({ stackName: "e2e", workDir: dir }, { envVars: work.env });
  await stack.setAllConfig(config);
  return { stack, dir } as { stack: Stack; dir: string };
}

/** Every file of the workdir's state backend, as text: what must never hold a secret in plaintext. */
export function stateText(work: PulumiWorkdir): string {
  const dir = join(work.dir, "state");
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), "utf8"))
    .join("\n");
}

/** The operations of a summary other than "same", e.g. { create: 3 }. */
export const changes = (summary: Record<string, number> | undefined) =>
  Object.fromEntries(Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && n > 0));

/** The steps an operation took on a Lab's children, other than "same": "op Type name", as its events say. */
export function stepLog() {
  const steps: string[] = [];
  const onEvent = (event: EngineEvent) => {
    const m = event.resOutputsEvent?.metadata;
    if (m && m.op !== "same" && m.urn.includes("netns:index:Lab$"))
      steps.push(`${m.op} ${m.type.split(":").pop()} ${m.urn.split("::").pop()}`);
  };
  return { steps, onEvent };
}

/** The config of a program over a lab's two hosts: hostA/hostKeyA, hostB/hostKeyB and the secret sshKey. */
export function twoHostConfig(lab: TestLab): ConfigMap {
  const [a, b] = lab.hosts;
  return {
    hostA: { value: a.address },
    hostKeyA: { value: a.hostKey },
    hostB: { value: b.address },
    hostKeyB: { value: b.hostKey },
    sshKey: { value: lab.clientKey, secret: true },
  };
}

/** Wall times of the steps run through `timed`, as "what: 1.2 s" lines for a test to print. */
export function stopwatch() {
  const lines: string[] = [];
  return {
    lines,
    async timed<T>(what: string, run: () => Promise<T>): Promise<T> {
      const start = Date.now();
      const result = await run();
      lines.push(`${what}: ${((Date.now() - start) / 1000).toFixed(1)} s`);
      return result;
    },
  };
}

/** The program as the engine-side project takes it: no connection, and each flow named by its output. */
export function forProject(program: Program) {
  return program.map((declared) => {
    const { connection: _connection, ...inputs } = declared.inputs;
    const flows = Object.fromEntries(
      Object.entries(declared.flows).map(([path, key]) => {
        const value = path.split(".").reduce<any>((cursor, part) => cursor?.[part], inputs);
        const source = program.find((d) => d.key === key)!.inputs;
        const output = ["name", ...Object.keys(source)].find((name) => source[name] === value);
        if (!output) throw new Error(`no output of ${key} carries ${path} = ${value}`);
        return [path, [key, output]];
      }),
    );
    return { key: declared.key, kind: declared.kind, inputs, deps: declared.deps, flows };
  });
}
