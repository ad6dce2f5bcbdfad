/** The SSH execution layer against real OpenSSH servers in throwaway hosts. */
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connection as connectionSchema } from "../../provider/connection";
import { CommandFailedError, ConnectionError, OutputTooLargeError } from "../../provider/errors";
import type { Host } from "../../provider/host";
import { fingerprint } from "../../provider/ssh/hostkeys";
import { closeAllHosts, hostFor } from "../../provider/ssh/pool";
import { PLAIN_USER, SUDO_USER, TestLab, USER_PASSWORD } from "../harness/throwawayHosts";

let lab: TestLab;

beforeAll(async () => {
  lab = await TestLab.create(2, { sshdConfig: ["MaxSessions 2"] });
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const hostOf = (extra: Record<string, unknown> = {}, index = 0) => hostFor(connectionSchema.parse(lab.hosts[index].connection(extra)));

/**
 * The pid of the remote shell that runs the host's commands (the parent of `sh -c`). The test hosts
 * share this machine's pid namespace, so this pid can be killed from here: precisely that process,
 * never every process of a name, which would hit other labs on the machine too.
 */
async function remoteShellPid(host: Host): Promise<number> {
  return Number((await host.run(["sh", "-c", "echo $PPID"])).stdout.trim());
}

function parentPid(index: number, pid: number): number {
  return Number(lab.hosts[index].sh(["ps", "-o", "ppid=", "-p", String(pid)]).trim());
}

async function waitUntilGone(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} is still there`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // Let the channel's close reach the pool.
  await new Promise((r) => setTimeout(r, 300));
}

/**
 * Command lines of the processes in test host `index` (its network namespace). `ps` there would list
 * the whole machine's, other labs' sshd sessions included.
 */
function processesOf(index: number): string[] {
  const namespace = readlinkSync(`/proc/${lab.hosts[index].pid}/ns/net`);
  const commandLines: string[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (readlinkSync(`/proc/${entry}/ns/net`) !== namespace) continue;
      commandLines.push(readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0+$/, "").replace(/\0/g, " "));
    } catch {
      // Exited while we looked.
    }
  }
  return commandLines;
}

/** How many sshd session processes serve connections on the host right now. */
function sshdSessions(index: number): number {
  return processesOf(index).filter((l) => /^sshd: \S+@notty/.test(l)).length;
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
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => host.run(["sh", "-c", `sleep 0.01; echo ${i}`])));
  expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 60 }, (_, i) => String(i)));
  expect(sshdSessions(0)).toBe(1);
  const shells = processesOf(0).filter((l) => l === "/bin/sh").length;
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

test("a key that cannot be read (a wrong passphrase) is named as such, without the passphrase", async () => {
  const passphrase = "wrong-passphrase-5531";
  const encrypted = `${lab.dir}/encrypted_key`;
  require("node:child_process").execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "right-passphrase", "-f", encrypted]);
  const privateKey = require("node:fs").readFileSync(encrypted, "utf8");
  const err = await hostOf({ privateKey, passphrase })
    .run(["true"])
    .catch((e) => e);
  expect(err.failure).toBe("auth-failed");
  expect(err.message).toMatch(/private key could not be used/);
  expect(String(err.message) + String(err.stack)).not.toContain(passphrase);
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
  const viaSudo = await hostOf({ user: SUDO_USER, privateKey: undefined, password: USER_PASSWORD, sudo: true }).run(["id", "-u"]);
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
  const session = parentPid(0, await remoteShellPid(host));
  expect(lab.hosts[0].sh(["ps", "-o", "args=", "-p", String(session)])).toMatch(/^sshd: root@notty/);
  lab.hosts[0].sh(["kill", "-9", String(session)]);
  await waitUntilGone(session);
  expect((await host.run(["echo", "again"])).stdout).toBe("again\n");
});

test("a shell that died while idle leaves the pool; the next command gets a new one", async () => {
  const host = hostOf({ maxSessions: 1, commandTimeout: 31 });
  const dead = await remoteShellPid(host);
  lab.hosts[0].sh(["kill", "-9", String(dead)]);
  await waitUntilGone(dead);
  expect((await host.run(["echo", "after"])).stdout).toBe("after\n");
  const replacement = await remoteShellPid(host);
  expect(replacement).not.toBe(dead);
  expect(await remoteShellPid(host)).toBe(replacement);
});

test("output is collected whole across many chunks; output over the cap fails, naming host, command and cap", async () => {
  const connection = connectionSchema.parse(lab.hosts[0].connection({ maxSessions: 1, commandTimeout: 32 }));
  const uncapped = await hostFor(connection).run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' a"]);
  expect(uncapped.stdout).toBe("a".repeat(3_000_000));

  const host = hostFor(connection, 2 ** 20);
  const shell = await remoteShellPid(host);
  const err = await host.run(["head", "-c", "3000000", "/dev/zero"]).catch((e) => e);
  expect(err).toBeInstanceOf(OutputTooLargeError);
  expect(err.message).toContain(`root@${lab.hosts[0].address}:22`);
  expect(err.message).toContain("head -c 3000000 /dev/zero");
  expect(err.message).toContain("1 MiB");
  // The shell that was cut off is closed on the host too, and the next command gets a new one.
  await waitUntilGone(shell);
  expect(await remoteShellPid(host)).not.toBe(shell);
});

test("a host whose firewall drops SSH fails within 30 s, naming the host, directly and through a jump host", async () => {
  closeAllHosts();
  const target = lab.hosts[1];
  const dropSsh = ["INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"];
  target.sh(["iptables", "-w", "-I", ...dropSsh]);
  try {
    const started = Date.now();
    const [direct, viaJump] = await Promise.all([
      hostOf({}, 1)
        .run(["true"])
        .catch((e) => e),
      hostFor(connectionSchema.parse({ ...target.connection(), proxy: lab.hosts[0].connection() }))
        .run(["true"])
        .catch((e) => e),
    ]);
    expect(Date.now() - started).toBeLessThanOrEqual(30_000);
    for (const err of [direct, viaJump]) {
      expect(err).toBeInstanceOf(ConnectionError);
      expect(err.failure).toBe("timeout");
      expect(err.message).toContain(`root@${target.address}:22`);
      expect(err.message).toContain("did not answer");
    }
    expect(viaJump.message).toContain("did not answer the jump host");
  } finally {
    target.sh(["iptables", "-w", "-D", ...dropSsh]);
  }
});
