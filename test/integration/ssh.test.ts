/** The SSH execution layer against real OpenSSH servers in throwaway hosts. */
import { connection as connectionSchema } from "../../provider/connection";
import { CommandFailedError, ConnectionError } from "../../provider/errors";
import { fingerprint } from "../../provider/ssh/hostkeys";
import { closeAllHosts, hostFor } from "../../provider/ssh/pool";
import { PLAIN_USER, SUDO_USER, TestLab, USER_PASSWORD } from "../../scripts/throwawayHosts";

let lab: TestLab;

beforeAll(async () => {
  lab = await TestLab.create(2, { sshdConfig: ["MaxSessions 2"] });
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const hostOf = (extra: Record<string, unknown> = {}, index = 0) =>
  hostFor(connectionSchema.parse(lab.hosts[index].connection(extra)));

/** How many sshd session processes serve connections on the host right now. */
function sshdSessions(index: number): number {
  return lab.hosts[index].sh(["ps", "-eo", "args"]).split("\n").filter((l) => /^sshd: \S+@notty/.test(l)).length;
}

test("runs a command and returns the fixed result shape", async () => {
  const result = await hostOf().run(["sh", "-c", "printf 'out no newline'; echo err >&2; exit 0"]);
  expect(result).toMatchObject({ exitCode: 0, stdout: "out no newline", stderr: "err\n" });
  expect(result.command).toBe("sh -c 'printf '\\''out no newline'\\''; echo err >&2; exit 0'");
  expect(result.durationMs).toBeGreaterThanOrEqual(0);
});

test("a failing command throws with the command, exit code and stderr", async () => {
  const err = await hostOf()
    .run(["ip", "link", "show", "dev", "no-such-dev"])
    .catch((e) => e);
  expect(err).toBeInstanceOf(CommandFailedError);
  expect(err.message).toContain("ip link show dev no-such-dev");
  expect(err.message).toContain("exit 1");
  expect(err.message).toMatch(/does not exist/);
  const soft = await hostOf().run(["false"], { allowFailure: true });
  expect(soft.exitCode).toBe(1);
});

test("values arrive as single arguments, shell metacharacters inert", async () => {
  const tricky = `a'b"c $(touch /tmp/pwned) ; rm -rf / \`x\` \\ \n end`;
  const result = await hostOf().run(["printf", "%s", tricky]);
  expect(result.stdout).toBe(tricky);
  expect(lab.hosts[0].sh(["sh", "-c", "test -e /tmp/pwned && echo yes || echo no"]).trim()).toBe("no");
});

test("many concurrent commands share one connection and never exceed the server's MaxSessions", async () => {
  closeAllHosts();
  await new Promise((r) => setTimeout(r, 200));
  const host = hostOf({ maxSessions: 8 });
  const results = await Promise.all(
    Array.from({ length: 60 }, (_, i) => host.run(["sh", "-c", `sleep 0.01; echo ${i}`])),
  );
  expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
  expect(sshdSessions(0)).toBe(1);
  const shells = lab.hosts[0].sh(["ps", "-eo", "args"]).split("\n").filter((l) => l === "/bin/sh").length;
  expect(shells).toBeGreaterThanOrEqual(1);
  expect(shells).toBeLessThanOrEqual(2);
});

test("an unknown host key is refused with its fingerprint and how to pin it", async () => {
  const knownHostsFile = `${lab.dir}/empty_known_hosts`;
  const err = await hostOf({ hostKey: undefined, knownHostsFile })
    .run(["touch", "/tmp/should-not-exist"])
    .catch((e) => e);
  expect(err).toBeInstanceOf(ConnectionError);
  expect(err.failure).toBe("host-key-unknown");
  const blob = Buffer.from(lab.hosts[0].hostKey.split(" ")[1], "base64");
  expect(err.message).toContain(fingerprint(blob));
  expect(err.message).toContain("connection.hostKey");
  expect(lab.hosts[0].sh(["sh", "-c", "test -e /tmp/should-not-exist && echo yes || echo no"]).trim()).toBe("no");
});

test("concurrent commands to a host that cannot be reached all fail, promptly, after one dial each", async () => {
  const host = hostOf({ hostKey: undefined, knownHostsFile: `${lab.dir}/no_known_hosts`, maxSessions: 4 });
  const started = Date.now();
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => host.run(["true"])));
  expect(results.map((r) => r.status)).toEqual(Array(5).fill("rejected"));
  for (const r of results) expect((r as PromiseRejectedResult).reason.failure).toBe("host-key-unknown");
  expect(Date.now() - started).toBeLessThan(5000);
});

test("a mismatching pinned key is refused; known_hosts and the explicit opt-out work", async () => {
  const err = await hostOf({ hostKey: lab.hosts[1].hostKey })
    .run(["true"])
    .catch((e) => e);
  expect(err.failure).toBe("host-key-mismatch");
  const blob = Buffer.from(lab.hosts[0].hostKey.split(" ")[1], "base64");
  const pinnedByFingerprint = await hostOf({ hostKey: fingerprint(blob) }).run(["true"]);
  expect(pinnedByFingerprint.exitCode).toBe(0);
  const knownHostsFile = `${lab.dir}/known_hosts`;
  require("node:fs").writeFileSync(knownHostsFile, `${lab.hosts[0].address} ${lab.hosts[0].hostKey}\n`);
  expect((await hostOf({ hostKey: undefined, knownHostsFile }).run(["true"])).exitCode).toBe(0);
  expect((await hostOf({ hostKey: undefined, insecureSkipHostKeyCheck: true }).run(["true"])).exitCode).toBe(0);
});

test("authentication failure is named and leaks no credential", async () => {
  const password = "not-the-password-7781";
  const err = await hostOf({ user: SUDO_USER, privateKey: undefined, password })
    .run(["true"])
    .catch((e) => e);
  expect(err.failure).toBe("auth-failed");
  expect(String(err.message) + String(err.stack)).not.toContain(password);
});

test("an unreachable server is reported as such", async () => {
  const err = await hostOf({ port: 2222 })
    .run(["true"])
    .catch((e) => e);
  expect(err).toBeInstanceOf(ConnectionError);
  expect(err.failure).toBe("unreachable");
  expect(err.message).toContain("ECONNREFUSED");
});

test("sudo -n runs commands as root for a non-root user; a user without sudo gets a clear error", async () => {
  const asUser = await hostOf({ user: SUDO_USER, privateKey: undefined, password: USER_PASSWORD }).run(["id", "-u"]);
  expect(asUser.stdout.trim()).toBe("4242");
  const viaSudo = await hostOf({ user: SUDO_USER, privateKey: undefined, password: USER_PASSWORD, sudo: true }).run([
    "id",
    "-u",
  ]);
  expect(viaSudo.stdout.trim()).toBe("0");
  const err = await hostOf({ user: PLAIN_USER, privateKey: undefined, password: USER_PASSWORD, sudo: true })
    .run(["id", "-u"])
    .catch((e) => e);
  expect(err.failure).toBe("sudo-failed");
  expect(err.message).toMatch(/sudo/);
  expect(err.message).not.toContain(USER_PASSWORD);
});

test("reaches a host through a jump host", async () => {
  const jump = lab.hosts[0].connection();
  const host = hostFor(connectionSchema.parse({ ...lab.hosts[1].connection(), proxy: jump }));
  const result = await host.run(["ip", "-br", "addr", "show", "dev", "eth0"]);
  expect(result.stdout).toContain(lab.hosts[1].address);
});

test("a command over its time limit fails, and the host stays usable", async () => {
  const host = hostOf({ commandTimeout: 1 });
  const err = await host.run(["sleep", "5"]).catch((e) => e);
  expect(err.failure).toBe("timeout");
  expect((await host.run(["echo", "after"])).stdout).toBe("after\n");
});

test("a dropped connection is reopened for the next command", async () => {
  const host = hostOf({ commandTimeout: 30 });
  expect((await host.run(["true"])).exitCode).toBe(0);
  lab.hosts[0].sh(["pkill", "-f", "^sshd: root@notty"]);
  await new Promise((r) => setTimeout(r, 200));
  expect((await host.run(["echo", "again"])).stdout).toBe("again\n");
});
