/**
 * examples/bridge-lab driven by the real Pulumi CLI (Automation API, local file backend, passphrase
 * secrets) against a throwaway host: up with real traffic, a clean preview, drift caught by refresh
 * and repaired by up, in-place update versus replacement, no plaintext secrets in state, an upgraded
 * provider serving refresh and destroy of resources made by the old one, and destroy leaving the host
 * exactly as it was. The tests run in order on one stack.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { proveBridgeLab } from "../harness/labProof";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stateText } from "../harness/e2e";
import { hostSnapshot } from "../harness/hostSnapshot";

jest.setTimeout(300_000);

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let projectDir: string;
let target: TestHost;
let before: Record<string, unknown>;
const ips = { red: "192.168.15.1", blue: "192.168.15.2", gateway: "192.168.15.5" };

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
  target = lab.hosts[0];
  work = PulumiWorkdir.create("e2e-bridge-lab");
  ({ stack, dir: projectDir } = await projectStack(work, "bridge-lab", {
    host: { value: target.address },
    hostKey: { value: target.hostKey },
    sshKey: { value: lab.clientKey, secret: true },
    mtu: { value: "1500" },
  }));
  before = hostSnapshot(target);
});

afterAll(() => {
  lab?.destroy();
  work?.remove();
});

test("up builds the lab and it carries real traffic", async () => {
  const result = await stack.up();
  expect(result.summary.result).toBe("succeeded");
  expect(changes(result.summary.resourceChanges)).toEqual({ create: 14 });
  expect(await proveBridgeLab(target, lab.hosts[1], ips)).toHaveLength(5);
});

test("a second preview reports no changes", async () => {
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
});

const drifts: [string, string[], "delete" | "update"][] = [
  ["a namespace deleted", ["ip", "netns", "del", "red"], "delete"],
  ["an address removed", ["ip", "-n", "blue", "addr", "del", "192.168.15.2/24", "dev", "veth-blue"], "delete"],
  ["a link set down", ["ip", "-n", "red", "link", "set", "veth-red", "down"], "update"],
  ["an MTU changed", ["ip", "link", "set", "veth-blue-br", "mtu", "1400"], "update"],
  [
    "an iptables rule deleted",
    ["sh", "-c", "iptables -w -t nat -S POSTROUTING | grep pulumi-netns | head -1 | sed 's/^-A/-D/' | xargs iptables -w -t nat"],
    "update",
  ],
];

test.each(drifts)("drift: %s is reported by refresh and repaired by up", async (_what, inject, reported) => {
  target.sh(inject);
  const refreshed = await stack.refresh();
  expect(changes(refreshed.summary.resourceChanges)[reported]).toBeGreaterThanOrEqual(1);
  const repaired = await stack.up();
  expect(Object.keys(changes(repaired.summary.resourceChanges)).length).toBeGreaterThan(0);
  expect(changes((await stack.preview()).changeSummary)).toEqual({});
  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
});

test("the lab works again after all that drift", async () => {
  expect(await proveBridgeLab(target, lab.hosts[1], ips)).toHaveLength(5);
});

test("an MTU change updates in place; an address change replaces; the preview says which", async () => {
  await stack.setConfig("mtu", { value: "1400" });
  const mtuPreview = await stack.preview();
  expect(changes(mtuPreview.changeSummary)).toEqual({ update: 3 });
  await stack.up();
  expect(target.sh(["ip", "-n", "red", "link", "show", "veth-red"])).toContain("mtu 1400");
  expect(target.sh(["ip", "link", "show", "v-net-0"])).toContain("mtu 1400");

  await stack.setConfig("redAddress", { value: "192.168.15.11/24" });
  const addressPreview = await stack.preview();
  // The address is replaced (the new one first, so the routes through the device stay); the route that
  // names it as its source changes in place.
  expect(changes(addressPreview.changeSummary)).toEqual({ replace: 1, update: 1 });
  await stack.up();
  expect(target.sh(["ip", "-n", "red", "route", "show", "default"])).toContain("src 192.168.15.11");
  const red = target.sh(["ip", "-n", "red", "-br", "addr", "show", "veth-red"]);
  expect(red).toContain("192.168.15.11/24");
  expect(red).not.toContain("192.168.15.1/24");
  expect(await proveBridgeLab(target, lab.hosts[1], { ...ips, red: "192.168.15.11" })).toHaveLength(5);
});

test("neither `pulumi stack export`, the state files nor the stack config hold the private key", async () => {
  // The Automation API's exportStack shows secrets; the plain CLI command does not.
  const exported = execFileSync("pulumi", ["stack", "export", "--stack", "e2e"], {
    cwd: projectDir,
    env: { ...process.env, ...work.env },
    encoding: "utf8",
  });
  const stateFiles = stateText(work);
  expect(stateFiles).toContain("netns:Namespace");
  const config = readFileSync(join(projectDir, "Pulumi.e2e.yaml"), "utf8");
  const keyBody = lab.clientKey.split("\n").filter((l) => l && !l.startsWith("-----"));
  expect(keyBody.length).toBeGreaterThan(2);
  for (const text of [exported, stateFiles, config]) {
    for (const line of keyBody) expect(text).not.toContain(line);
    expect(text).not.toContain("PRIVATE KEY");
  }
  expect(exported).toContain("ciphertext");
  expect(exported).toContain(`"name": "red"`);
});

test("an upgraded provider serves refresh and destroy of resources made by the old one; destroy restores the host", async () => {
  // "Upgrade": this project now loads a copy of the package whose provider logs every call.
  const upgraded = join(work.dir, "pulumi-netns-next");
  const log = join(work.dir, "upgrade.log");
  mkdirSync(upgraded);
  cpSync(join(REPO_ROOT, "package.json"), join(upgraded, "package.json"));
  cpSync(join(REPO_ROOT, "dist"), join(upgraded, "dist"), { recursive: true });
  appendFileSync(
    join(upgraded, "dist", "provider", "index.js"),
    `\nconst logged = exports.provider;\nexports.provider = (kind) => Object.fromEntries(Object.entries(logged(kind)).map(([m, f]) => ` +
      `[m, (...a) => { require("fs").appendFileSync(${JSON.stringify(log)}, kind + "." + m + "\\n"); return f(...a); }]));\n`,
  );
  mkdirSync(join(projectDir, "node_modules"));
  symlinkSync(upgraded, join(projectDir, "node_modules", "pulumi-netns"));

  expect(changes((await stack.refresh()).summary.resourceChanges)).toEqual({});
  expect(readFileSync(log, "utf8")).toContain("Namespace.read");
  const destroyed = await stack.destroy();
  expect(changes(destroyed.summary.resourceChanges)).toEqual({ delete: 14 });
  expect(readFileSync(log, "utf8")).toContain("Namespace.delete");
  expect(readFileSync(log, "utf8")).toContain("Sysctl.delete");
  expect(hostSnapshot(target)).toEqual(before);
});
