/**
 * The edit test drives the provider the way it assumes the engine does; this checks the assumption.
 * A few of its random sequences run through the real Pulumi CLI against one throwaway host and through
 * the driver against another: each step must do the same operations, a refresh then finds nothing to
 * change, and destroy leaves both hosts as they were.
 */
import fc from "fast-check";
import { join } from "node:path";
import { closeAllHosts } from "../../provider";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { changes, forProject, projectStack } from "../harness/e2e";
import { EditDriver, Operation } from "../harness/editDriver";
import { programSpec, toProgram } from "../harness/programs";

const SEQUENCES = 2;
const STEPS = 6;
const SEED = 20261130;

jest.setTimeout(20 * 60_000);

let lab: TestLab;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const changed = (ops: Record<string, Operation>) => Object.fromEntries(Object.entries(ops).filter(([, op]) => op !== "same"));

/** What the engine did to each resource of the program, from its step events, in the driver's words. */
function engineOperations(events: EngineEvent[]): Record<string, Operation> {
  const steps: Record<string, string[]> = {};
  for (const event of events) {
    const step = event.resourcePreEvent?.metadata;
    if (!step || step.type === "pulumi:pulumi:Stack" || step.type.startsWith("pulumi:providers:")) continue;
    (steps[step.urn.split("::").pop()!] ??= []).push(step.op);
  }
  // A dependent deleted ahead of a replacement ("delete-replaced") and not in the program any more is deleted.
  const word = (ops: string[]): Operation => {
    if (ops.some((op) => op === "replace" || op === "create-replacement")) return "replace";
    if (ops.some((op) => op === "delete" || op === "delete-replaced")) return "delete";
    return (ops.find((op) => op !== "same") as Operation) ?? "same";
  };
  return Object.fromEntries(Object.entries(steps).map(([key, ops]) => [key, word(ops)]));
}

/** Operations seen across the sequences: the seed must exercise every kind of step. */
const seen = new Set<string>();
const sequences = fc.sample(fc.array(programSpec, { minLength: STEPS, maxLength: STEPS }), { numRuns: SEQUENCES, seed: SEED });

test.each(sequences.map((sequence, index) => [index, sequence] as const))(
  "sequence %i: the engine does what the driver does, and every step converges",
  async (index, sequence) => {
    const [engineHost, driverHost] = lab.hosts;
    const work = PulumiWorkdir.create(`e2e-edits-${index}`);
    const driver = new EditDriver();
    try {
      const before = [hostSnapshot(engineHost), hostSnapshot(driverHost)];
      const config = {
        host: { value: engineHost.address },
        hostKey: { value: engineHost.hostKey },
        sshKey: { value: lab.clientKey, secret: true },
      };
      const { stack } = await projectStack(work, "edits", config, join(REPO_ROOT, "test", "e2e", "programs", "edits"));
      for (const [step, spec] of sequence.entries()) {
        const program = toProgram(spec, engineHost.connection(), engineHost.address, driverHost.address);
        await stack.setConfig("program", { value: JSON.stringify(forProject(program)) });
        const events: EngineEvent[] = [];
        await stack.up({ onEvent: (event) => events.push(event) });
        const driverOps = changed(await driver.apply(toProgram(spec, driverHost.connection(), driverHost.address, engineHost.address)));
        expect({ step, ops: changed(engineOperations(events)) }).toEqual({ step, ops: driverOps });
        for (const op of Object.values(driverOps)) seen.add(op);
        expect({ step, refreshed: changes((await stack.preview({ refresh: true })).changeSummary) }).toEqual({ step, refreshed: {} });
      }
      await stack.destroy();
      await driver.destroy();
      expect([hostSnapshot(engineHost), hostSnapshot(driverHost)]).toEqual(before);
    } finally {
      work.remove();
    }
  },
);

test("the sequences created, updated, replaced and deleted", () => {
  expect([...seen].sort()).toEqual(["create", "delete", "replace", "update"]);
});
