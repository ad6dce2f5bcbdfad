/**
 * `pulumi-netns sweep` through the real CLI on a throwaway host: a program of every kind is made with
 * `pulumi up`, then its stack is removed with `pulumi stack rm --force`, which leaves every object on the
 * host. The sweep lists each of them by its owner tag, changes nothing without --yes, and with --yes
 * leaves the host exactly as it was before the up. For a stack whose state has everything, it finds nothing.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { forProject, projectStack } from "../harness/e2e";
import { EVERY_KIND, toProgram } from "../harness/programs";

jest.setTimeout(10 * 60_000);

let lab: TestLab;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(2);
});

afterAll(() => lab?.destroy());

test("after `pulumi stack rm --force`, sweep lists every object the stack left and --yes removes them all", async () => {
  const [host, peer] = lab.hosts;
  const work = PulumiWorkdir.create("e2e-sweep");
  try {
    const before = hostSnapshot(host);
    const config = { host: { value: host.address }, hostKey: { value: host.hostKey }, sshKey: { value: lab.clientKey, secret: true } };
    const { stack, dir } = await projectStack(work, "edits", config, join(REPO_ROOT, "test", "e2e", "programs", "edits"));
    await stack.setConfig("program", {
      value: JSON.stringify(forProject(toProgram(EVERY_KIND, host.connection(), host.address, peer.address))),
    });
    const made = await stack.up();
    const resources = Object.values(made.summary.resourceChanges ?? {}).reduce((sum, n) => sum + (n ?? 0), 0) - 1;
    const env = { ...process.env, ...work.env };
    const sweep = (...args: string[]) =>
      spawnSync("node", [join(REPO_ROOT, "dist", "cli", "main.js"), "sweep", "--stack", "e2e", ...args], {
        cwd: dir,
        env,
        encoding: "utf8",
      });

    // A stack whose state has everything: its hosts come from the state; nothing is left over.
    const clean = sweep();
    expect({ status: clean.status, stdout: clean.stdout, stderr: clean.stderr }).toEqual({
      status: 0,
      stdout: `stack edits/e2e: ${resources} resources in its state\nroot@${host.address}:22: nothing left over\n`,
      stderr: "",
    });

    expect(spawnSync("pulumi", ["stack", "rm", "--force", "--yes", "--stack", "e2e"], { cwd: dir, env, encoding: "utf8" }).status).toBe(0);
    const left = hostSnapshot(host);
    expect(left).not.toEqual(before);

    // No state: the hosts must be named.
    const unnamed = sweep();
    expect({ status: unnamed.status, stderr: unnamed.stderr.split("\n")[0] }).toEqual({
      status: 2,
      stderr: "pulumi-netns: stack e2e has no state: name the hosts to look on with --host",
    });
    const keyFile = join(work.dir, "client-key");
    writeFileSync(keyFile, lab.clientKey, { mode: 0o600 });
    const target = ["--host", `root@${host.address}`, "--identity", keyFile, "--host-key", host.hostKey];
    const listed = sweep(...target);
    expect({ status: listed.status, stderr: listed.stderr }).toEqual({ status: 0, stderr: "" });
    const lines = listed.stdout.trim().split("\n");
    expect(lines.slice(0, 2)).toEqual([
      "stack edits/e2e: no state (removed?); everything tagged with it is left over",
      // Each resource's objects, a LabSegment's two: its bridge and its VXLAN port.
      `root@${host.address}:22: ${resources + 1} left over`,
    ]);
    expect(lines.at(-1)).toBe("  (run again with --yes to remove them)");
    // Every resource of the program, by kind.
    const kinds = lines
      .slice(2, -1)
      .map((line) => line.trim().split(/\s+/)[0])
      .sort();
    expect(kinds).toEqual([
      "Address",
      "Address",
      "Bridge",
      "Bridge",
      "Masquerade",
      "Namespace",
      "Namespace",
      "PortForward",
      "Route",
      "Sysctl",
      "Sysctl",
      "Veth",
      "Vxlan",
      "Vxlan",
    ]);
    expect(lines.join("\n")).not.toMatch(/PRIVATE KEY/);
    expect(hostSnapshot(host)).toEqual(left);

    const removed = sweep(...target, "--yes");
    expect({ status: removed.status, stderr: removed.stderr }).toEqual({ status: 0, stderr: "" });
    expect(
      removed.stdout
        .trim()
        .split("\n")
        .slice(2)
        .every((line) => line.endsWith("  removed")),
    ).toBe(true);
    expect(hostSnapshot(host)).toEqual(before);
    expect(host.sh(["find", "/run/pulumi-netns", "-type", "f", "!", "-name", "lock"], { allowFailure: true })).toBe("");
    console.log(`sweep after \`pulumi stack rm --force\`:\n${removed.stdout}`);
  } finally {
    work.remove();
  }
});
