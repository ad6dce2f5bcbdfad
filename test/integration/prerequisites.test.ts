/**
 * What a fresh machine meets before anything else: scripts/prerequisites.sh with commands hidden from
 * PATH (and a stand-in apt-get), the leftovers comparison of .ci/run, and a demo lab kept past the
 * process that made it and removed later by another.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ts from "typescript";
import { REPO_ROOT } from "../harness/pulumiWorkdir";
import { KeptLab, keptHostRunning, TestLab } from "../harness/throwawayHosts";

const BASH = execFileSync("sh", ["-c", "command -v bash"], { encoding: "utf8" }).trim();

/** Killed orphans stay zombies on machines whose PID 1 does not reap them: those count as gone. */
function running(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("scripts/prerequisites.sh", () => {
  const present = [
    ...["ip", "ss", "bridge", "tc", "ssh", "ssh-keygen", "curl", "pgrep", "ps", "sysctl"],
    ...["unshare", "nsenter", "setsid", "setpriv", "openssl", "modprobe", "tcpdump"],
  ];
  const hidden = ["iptables", "iptables-save", "ip6tables", "ip6tables-save", "sshd", "ping", "sudo", "conntrack", "dot"];
  const packages = "iptables openssh-server iputils-ping sudo conntrack graphviz";
  const realPath = (command: string) => execFileSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();
  let bin: string;
  let aptLog: string;

  /** A PATH of only the `present` commands, and an apt-get that logs its arguments and runs `effect`. */
  beforeEach(() => {
    bin = mkdtempSync(join(tmpdir(), "pnt-prereq-"));
    chmodSync(bin, 0o755);
    aptLog = join(bin, "apt.log");
    for (const command of present) symlinkSync(realPath(command), join(bin, command));
  });
  afterEach(() => rmSync(bin, { recursive: true, force: true }));

  function fakeAptGet(effect: string): void {
    writeFileSync(join(bin, "apt-get"), `#!${BASH}\necho "$*" >> ${aptLog}\n${effect}\n`, { mode: 0o755 });
  }

  function prerequisites(user?: number) {
    const argv = [BASH, join(REPO_ROOT, "scripts", "prerequisites.sh"), "npm test"];
    const command = user === undefined ? argv : [realPath("setpriv"), `--reuid=${user}`, `--regid=${user}`, "--clear-groups", ...argv];
    return spawnSync(command[0], command.slice(1), { env: { PATH: bin }, encoding: "utf8" });
  }

  const advice =
    "npm test: missing iptables, iptables-save, ip6tables, ip6tables-save, sshd, ping, sudo, conntrack, dot (the throwaway test hosts need them). Install them as root on Debian with:\n" +
    `  apt-get install -y --no-install-recommends ${packages}\n`;

  test("nothing missing: silent and successful", () => {
    for (const command of hidden) symlinkSync(realPath(command), join(bin, command));
    expect(prerequisites()).toMatchObject({ status: 0, stdout: "", stderr: "" });
  });

  test("without apt-get: one message lists everything missing and the one command that installs it", () => {
    expect(prerequisites()).toMatchObject({ status: 1, stdout: "", stderr: advice });
  });

  test("not root: the same message, and apt-get is not tried", () => {
    fakeAptGet("exit 1");
    expect(prerequisites(65534)).toMatchObject({ status: 1, stdout: "", stderr: advice });
    expect(existsSync(aptLog)).toBe(false);
  });

  test("root with apt-get: installs what is missing, saying what and why in one line", () => {
    const links = hidden.map((command) => `${realPath("ln")} -sf ${realPath(command)} ${join(bin, command)}`).join("\n");
    fakeAptGet(`case "$*" in *install*) ${links};; esac`);
    const result = prerequisites();
    expect(result).toMatchObject({ status: 0, stdout: "" });
    expect(result.stderr).toBe(
      `npm test: installing ${packages} with apt-get, for iptables, iptables-save, ip6tables, ip6tables-save, sshd, ping, sudo, conntrack, dot (the throwaway test hosts need them)\n`,
    );
    expect(readFileSync(aptLog, "utf8")).toBe(
      "-qq -o DPkg::Lock::Timeout=600 update\n" + `-qq -o DPkg::Lock::Timeout=600 install -y --no-install-recommends ${packages}\n`,
    );
  });

  test("apt-get that fails, or installs nothing useful, is an error", () => {
    fakeAptGet('echo "E: Unable to locate package conntrack"; exit 100');
    let result = prerequisites();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /E: Unable to locate package conntrack\nnpm test: apt-get could not install iptables .*graphviz \(see above\)\n$/,
    );

    fakeAptGet("exit 0");
    result = prerequisites();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /npm test: still missing after apt-get: iptables iptables-save ip6tables ip6tables-save sshd ping sudo conntrack dot /,
    );
  });
});

describe("test/harness/leftovers.sh (.ci/run's LEFTOVERS)", () => {
  test("reports only what is new since the snapshot, not namespaces the machine had before", () => {
    const tag = `pnt-precheck-${randomBytes(2).toString("hex")}`;
    const dir = mkdtempSync(join(tmpdir(), "pnt-leftovers-"));
    const before = join(dir, "before");
    const leftovers = (...args: string[]) =>
      spawnSync(BASH, [join(REPO_ROOT, "test", "harness", "leftovers.sh"), ...args], { encoding: "utf8" });
    try {
      execFileSync("ip", ["netns", "add", tag]);
      writeFileSync(before, leftovers().stdout);
      expect(readFileSync(before, "utf8")).toContain(`netns ${tag}\n`);
      // Other labs may come and go meanwhile (helpers share the machine): look only at ours.
      expect(leftovers("--since", before).stdout).not.toContain(tag);

      execFileSync("ip", ["netns", "add", `${tag}-new`]);
      const after = leftovers("--since", before);
      expect(after.status).toBe(1);
      expect(after.stdout.split("\n").filter((line) => line.includes(tag))).toEqual([`netns ${tag}-new`]);
    } finally {
      for (const name of [tag, `${tag}-new`]) spawnSync("ip", ["netns", "del", name]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("reports a Pulumi plugin process and a Pulumi workdir in .work/ that the run left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pnt-leftovers-"));
    const before = join(dir, "before");
    const workdir = join(REPO_ROOT, ".work", `leftover-${randomBytes(2).toString("hex")}`);
    const leftovers = (...args: string[]) =>
      spawnSync(BASH, [join(REPO_ROOT, "test", "harness", "leftovers.sh"), ...args], { encoding: "utf8" });
    // A process named like the dynamic provider host, as an engine killed with SIGKILL leaves it.
    let plugin: ReturnType<typeof spawn> | undefined;
    try {
      writeFileSync(before, leftovers().stdout);
      mkdirSync(workdir, { recursive: true });
      plugin = spawn(BASH, ["-c", `exec -a "node ${dir}/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js" sleep 60`], {
        stdio: "ignore",
      });
      const cmdline = () => readFileSync(`/proc/${plugin!.pid}/cmdline`, "utf8");
      for (let i = 0; i < 100 && !cmdline().includes("dynamic-provider"); i++) await new Promise((r) => setTimeout(r, 20));
      const after = leftovers("--since", before);
      expect(after.status).toBe(1);
      const ours = after.stdout.split("\n").filter((line) => line.includes(dir) || line.includes(workdir.slice(REPO_ROOT.length + 1)));
      expect(ours).toEqual([
        `process ${plugin.pid} node ${dir}/node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js 60`,
        `workdir ${workdir.slice(REPO_ROOT.length + 1)}`,
      ]);
    } finally {
      plugin?.kill("SIGKILL");
      rmSync(workdir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a kept lab (npm run demo -- --keep / --destroy)", () => {
  const tcpOpen = (address: string) =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port: 22, timeout: 2000 });
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => (socket.destroy(), resolve(false)));
    });

  /** A directory holding throwawayHosts.ts (node built-ins only) transpiled, for a maker in another node process. */
  function harnessCopy(): string {
    const dir = mkdtempSync(join(tmpdir(), "pnt-kept-"));
    const source = readFileSync(join(REPO_ROOT, "test", "harness", "throwawayHosts.ts"), "utf8");
    writeFileSync(
      join(dir, "throwawayHosts.js"),
      ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText,
    );
    return dir;
  }

  test("a test run stopped by a signal (a CI timeout, Ctrl-C) removes its lab, and ends by that signal", async () => {
    const dir = harnessCopy();
    const maker = `require(${JSON.stringify(join(dir, "throwawayHosts.js"))}).TestLab.create(1).then((lab) => {
        console.log(JSON.stringify({ bridge: lab.bridge, dir: lab.dir, pid: lab.hosts[0].pid }));
        setInterval(() => undefined, 1000);
      });`;
    const child = spawn(process.execPath, ["-e", maker], { stdio: ["ignore", "pipe", "inherit"] });
    let lab: { bridge: string; dir: string; pid: number } | undefined;
    try {
      const line = await new Promise<string>((resolve) => child.stdout.once("data", (data: Buffer) => resolve(data.toString())));
      lab = JSON.parse(line) as { bridge: string; dir: string; pid: number };
      expect(running(lab.pid)).toBe(true);
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
      child.kill("SIGTERM");
      expect(await ended).toBe("SIGTERM");
      expect(running(lab.pid)).toBe(false);
      expect(spawnSync("ip", ["link", "show", lab.bridge]).status).not.toBe(0);
      expect(existsSync(lab.dir)).toBe(false);
    } finally {
      child.kill("SIGKILL");
      // What a failed removal left: the host's sshd, its cable (pnt<id>h0) and the bridge (pntbr<id>).
      if (lab && running(lab.pid)) process.kill(lab.pid, "SIGKILL");
      if (lab) for (const link of [lab.bridge.replace(/^pntbr/, "pnt") + "h0", lab.bridge]) spawnSync("ip", ["link", "del", link]);
      if (lab) rmSync(lab.dir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("outlives the process that made it; destroyKept removes hosts, stray lab processes, links and files", async () => {
    const dir = harnessCopy();
    // Killed at the timeout (a lab that is never kept keeps the maker alive), its exit hook removes the lab.
    const maker = `process.once("SIGTERM", () => process.exit(1));
      require(${JSON.stringify(join(dir, "throwawayHosts.js"))}).TestLab.create(1, { detached: true })
        .then((lab) => console.log(JSON.stringify({ kept: lab.keep(), address: lab.hosts[0].address })));`;
    let kept: KeptLab | undefined;
    try {
      const made = spawnSync(process.execPath, ["-e", maker], { encoding: "utf8", timeout: 60_000 });
      const output: { kept: KeptLab; address: string } | undefined = made.stdout ? JSON.parse(made.stdout) : undefined;
      kept = output?.kept;
      expect(made.stderr).toBe("");
      expect(made.status).toBe(0);
      const lab = output!.kept;
      const [host] = lab.hosts;
      expect(keptHostRunning(host)).toBe(true);
      expect(await tcpOpen(output!.address)).toBe(true);

      // A process left in a lab namespace that is then deleted, as after `pulumi destroy` with a shell open.
      const enter = ["nsenter", "-t", String(host.pid), "-n", "-m", "--"];
      execFileSync(enter[0], [...enter.slice(1), "ip", "netns", "add", "stray"]);
      const stray = spawnSync("sh", ["-c", `setsid ${enter.join(" ")} ip netns exec stray sleep 600 >/dev/null 2>&1 & echo $!`], {
        encoding: "utf8",
      });
      const strayPid = Number(stray.stdout.trim());
      await new Promise((r) => setTimeout(r, 300));
      execFileSync(enter[0], [...enter.slice(1), "ip", "netns", "del", "stray"]);
      expect(running(strayPid)).toBe(true);

      TestLab.destroyKept(lab);
      await new Promise((r) => setTimeout(r, 200));
      expect(keptHostRunning(host)).toBe(false);
      expect(running(strayPid)).toBe(false);
      for (const link of [lab.bridge, ...lab.links]) expect(spawnSync("ip", ["link", "show", link]).status).not.toBe(0);
      expect(existsSync(lab.dir)).toBe(false);
    } finally {
      if (kept) TestLab.destroyKept(kept);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
