/**
 * Two stacks on one host at the same time, each its own provider process (as two `pulumi up`s are): both
 * take one namespace (the first makes it, the other joins as a holder), hold one sysctl in it, and make and
 * delete NAT rules with FORWARD accepts in it, round after round, racing on the holder records and the
 * shared FORWARD chain. Every create reads back as asked, and the host ends as it was.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { hostSnapshot } from "../harness/hostSnapshot";
import { REPO_ROOT } from "../harness/pulumiWorkdir";
import type { TestHost } from "../harness/throwawayHosts";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
useTestHost((h) => {
  host = h;
});

const ROUNDS = Number(process.env.PNT_RACE_ROUNDS ?? 12);

/** One stack's run, in a process of its own (the built provider, as the dynamic provider host loads it). */
const STACK = `
const { provider, closeAllHosts } = require(${JSON.stringify(join(REPO_ROOT, "dist", "provider"))});
const [connection, stack, rounds] = JSON.parse(process.argv[1]);
const owner = (n) => n.toString(16).padStart(16, "0") + "@race/" + stack;
async function made(kind, props, n) {
  const p = provider(kind);
  const { inputs, failures } = await p.check({}, { connection, owner: owner(n), ...props });
  if (failures) throw new Error(JSON.stringify(failures));
  const { id, outs } = await p.create(inputs);
  const read = await p.read(id, outs);
  const diff = await p.diff(id, read.props, inputs);
  if (diff.changes) throw new Error(kind + " " + id + " reads back otherwise: " + JSON.stringify(read.props.rules ?? read.props));
  return { p, id, outs };
}
(async () => {
  const namespace = await made("Namespace", { name: "race", adopt: true }, 1);
  const sysctl = await made("Sysctl", { namespace: "race", key: "net.ipv4.ip_forward", value: "1" }, 2);
  for (let round = 0; round < rounds; round++) {
    const rules = await made("Masquerade", { namespace: "race", source: "10." + (stack === "a" ? 81 : 82) + "." + round + ".0/24" }, 100 + round);
    await rules.p.delete(rules.id, rules.outs);
  }
  await sysctl.p.delete(sysctl.id, sysctl.outs);
  await namespace.p.delete(namespace.id, namespace.outs);
  closeAllHosts();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
`;

function runStack(connection: Record<string, unknown>, stack: string): Promise<{ stack: string; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("node", ["-e", STACK, JSON.stringify([connection, stack, ROUNDS])], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("exit", (code) => resolve({ stack, code, stderr }));
  });
}

test(`two provider processes racing on one namespace, its sysctl and its FORWARD chain for ${ROUNDS} rounds: every step reads back as asked; nothing is left`, async () => {
  const before = hostSnapshot(host);
  const results = await Promise.all(["a", "b"].map((stack) => runStack(host.connection(), stack)));
  expect(results).toEqual([
    { stack: "a", code: 0, stderr: "" },
    { stack: "b", code: 0, stderr: "" },
  ]);
  expect(hostSnapshot(host)).toEqual(before);
  expect(host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true })).toBe("");
});
