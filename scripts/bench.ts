/**
 * `npm run bench` (root, Linux): measured on a throwaway host made on this machine.
 *  1. Cost of one command through the shared connection pool, one at a time and 64 at a time.
 *  2. Cost of one resource through the provider (Namespace create + delete).
 *  3. Wall time of `pulumi up`, `refresh` and `destroy` for each example, with the real CLI.
 * Prints a table and, last, one line of JSON.
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { connection as connectionSchema } from "../provider/connection";
import { closeAllHosts, provider } from "../provider";
import { hostFor } from "../provider/ssh/pool";
import { ensurePulumiCli, PulumiWorkdir } from "./pulumiWorkdir";
import { TestLab } from "./throwawayHosts";

const COMMANDS = 200;

async function timed<T>(work: () => Promise<T>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function main(): Promise<void> {
  ensurePulumiCli();
  const lab = await TestLab.create(2);
  const work = PulumiWorkdir.create("bench");
  const results: Record<string, number> = {};
  try {
    const [a, b] = lab.hosts;
    const host = hostFor(connectionSchema.parse(a.connection()));
    await host.run(["true"]);
    results["pool: sequential command (ms/op)"] = (await timed(async () => {
      for (let i = 0; i < COMMANDS; i++) await host.run(["ip", "netns", "list"]);
    })) / COMMANDS;
    results["pool: 64 concurrent, maxSessions 2 (ms/op)"] = (await timed(async () => {
      for (let round = 0; round < COMMANDS / 50; round++) {
        await Promise.all(Array.from({ length: 64 }, () => host.run(["ip", "netns", "list"])));
      }
    })) / ((COMMANDS / 50) * 64);
    const namespace = provider("Namespace");
    const inputs = (await namespace.check({}, { connection: a.connection(), name: "bench" })).inputs;
    const cycles = 50;
    results["provider: Namespace create+delete (ms/cycle)"] = (await timed(async () => {
      for (let i = 0; i < cycles; i++) {
        const { id, outs } = await namespace.create(inputs);
        await namespace.delete(id, outs);
      }
    })) / cycles;
    closeAllHosts();

    const sshKey = { value: lab.clientKey, secret: true };
    const configs: Record<string, Record<string, { value: string; secret?: boolean }>> = {
      "veth-pair": { host: { value: a.address }, hostKey: { value: a.hostKey }, sshKey },
      "bridge-lab": { host: { value: a.address }, hostKey: { value: a.hostKey }, sshKey },
      "multi-host": {
        hostA: { value: a.address },
        hostKeyA: { value: a.hostKey },
        hostB: { value: b.address },
        hostKeyB: { value: b.hostKey },
        sshKey,
      },
    };
    for (const [example, config] of Object.entries(configs)) {
      const stack = await LocalWorkspace.createStack(
        { stackName: "bench", workDir: work.copyProject(example) },
        { envVars: work.env },
      );
      await stack.setAllConfig(config);
      results[`${example}: pulumi up (ms)`] = await timed(() => stack.up());
      results[`${example}: pulumi refresh (ms)`] = await timed(() => stack.refresh());
      results[`${example}: pulumi destroy (ms)`] = await timed(() => stack.destroy());
    }
  } finally {
    closeAllHosts();
    lab.destroy();
    work.remove();
  }
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [what, value] of Object.entries(results)) process.stdout.write(`${what.padEnd(width)}  ${value.toFixed(1).padStart(9)}\n`);
  process.stdout.write(`${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v * 10) / 10])))}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : err}\n`);
  process.exit(1);
});
