/**
 * Throwaway SSH hosts on this machine. Each host is a network namespace with its own mount
 * namespace (a private tmpfs on /run, so `ip netns` on one host is invisible to the others) and its
 * own OpenSSH server, plugged into a bridge that only this lab adds to the machine's namespace, with
 * an address from 198.18.0.0/15 (the benchmarking range) and no default route. Nothing else on the
 * machine is touched; `destroy` removes all of it, and an exit hook does so if a run dies. A lab made
 * `detached` can be `keep`-ed: it outlives this process, and `TestLab.destroyKept` removes it later.
 */
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Argv } from "../../provider/host";

export const SUDO_USER = "pntsudo";
export const PLAIN_USER = "pntplain";
export const USER_PASSWORD = "lab-password-Ω";

export interface TestHost {
  index: number;
  address: string;
  /** "ssh-ed25519 AAAA..." as the host presents it. */
  hostKey: string;
  /** Runs argv inside the host (its network and mount namespaces) and returns stdout. */
  sh(argv: Argv, options?: { allowFailure?: boolean; timeoutMs?: number }): string;
  /** Starts a long-running process inside the host; it is killed on destroy. */
  spawn(argv: Argv): ChildProcess;
  /** A root connection that pins the host key. */
  connection(extra?: Record<string, unknown>): Record<string, unknown> & { host: string };
  pid: number;
}

function run(argv: Argv, options: { allowFailure?: boolean; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(argv[0], argv.slice(1), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 30_000,
    });
  } catch (err) {
    if (options.allowFailure) return (err as { stdout?: string }).stdout ?? "";
    const e = err as { stderr?: string; status?: number };
    throw new Error(`test host command failed (${e.status}): ${argv.join(" ")}\n${e.stderr ?? ""}`, { cause: err });
  }
}

function usedRanges(): string {
  return run(["ip", "-j", "addr"]) + run(["ip", "-j", "route", "show", "table", "all"]);
}

async function waitForPort(address: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port, timeout: 500 });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not come up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function nsInode(pid: number, kind: "net" | "mnt"): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/**
 * When a live process started (clock ticks since boot): with the pid, it names one process, never a
 * later one. Undefined for a zombie too: killed orphans stay zombies where PID 1 does not reap them.
 */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ...fields] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return state === "Z" || state === "X" ? undefined : fields[18];
  } catch {
    return undefined;
  }
}

/** What a later process needs to find a kept lab again and remove it. */
export interface KeptLab {
  id: string;
  dir: string;
  bridge: string;
  links: string[];
  hosts: { pid: number; startTime: string }[];
}

/** Whether a kept host's process still runs (after a reboot its pid may belong to anything). */
export function keptHostRunning(host: KeptLab["hosts"][number]): boolean {
  return startTime(host.pid) === host.startTime;
}

/** The source name of a host's private /run: every mount namespace copied from a host's shows it. */
const runMount = (labId: string) => `pnt-run-${labId}`;

function mountsOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/mountinfo`, "utf8");
  } catch {
    return "";
  }
}

/**
 * Kills every process living in a test host's namespaces, including `ip netns exec` children, also
 * those left in a lab namespace that was deleted meanwhile (their mount namespace still shows the
 * host's /run).
 */
function killHostProcesses(labId: string, hostPids: number[], childPids: number[]): void {
  const targets = new Set<string>(childPids.map((pid) => `pid:${pid}`));
  for (const hostPid of hostPids) {
    for (const kind of ["net", "mnt"] as const) {
      const inode = nsInode(hostPid, kind);
      if (inode) targets.add(inode);
    }
    const inner = run(
      ["nsenter", "-t", String(hostPid), "-m", "--", "sh", "-c", 'for f in /run/netns/*; do [ -e "$f" ] && stat -L -c %i "$f"; done; true'],
      { allowFailure: true },
    );
    for (const inode of inner.split("\n").filter(Boolean)) targets.add(`net:[${inode}]`);
  }
  // Never the machine's own namespaces, whatever a dead host's /proc entry says.
  for (const kind of ["net", "mnt"] as const) targets.delete(nsInode(process.pid, kind) ?? "");
  const hostRun = ` - tmpfs ${runMount(labId)} `;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const match =
      targets.has(`pid:${pid}`) ||
      (["net", "mnt"] as const).some((kind) => {
        const inode = nsInode(pid, kind);
        return inode !== undefined && targets.has(inode);
      }) ||
      mountsOf(pid).includes(hostRun);
    if (match) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

function removeLab(lab: { id: string; hostPids: number[]; childPids: number[]; links: string[]; bridge: string; dir: string }): void {
  killHostProcesses(lab.id, lab.hostPids, lab.childPids);
  for (const link of lab.links) run(["ip", "link", "del", link], { allowFailure: true });
  run(["ip", "link", "del", lab.bridge], { allowFailure: true });
  rmSync(lab.dir, { recursive: true, force: true });
}

const STOP_SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];

export class TestLab {
  readonly hosts: TestHost[] = [];
  readonly clientKey: string;
  readonly clientKeyPath: string;
  private readonly children: ChildProcess[] = [];
  private readonly namespaceLinks: string[] = [];
  private destroyed = false;
  private readonly exitHook = () => this.destroy();
  /** A test run stopped by a signal (a CI timeout, Ctrl-C) removes its lab too, then ends as the signal asks. */
  private readonly signalHook = (signal: NodeJS.Signals) => {
    this.destroy();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly bridge: string,
    readonly prefix: string,
    private readonly detached: boolean,
  ) {
    this.clientKeyPath = join(dir, "client_key");
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pulumi-netns-test", "-f", this.clientKeyPath]);
    this.clientKey = readFileSync(this.clientKeyPath, "utf8");
    process.once("exit", this.exitHook);
    for (const signal of STOP_SIGNALS) process.once(signal, this.signalHook);
  }

  /** The machine-side address of the lab bridge (reachable from every test host). */
  get gateway(): string {
    return `${this.prefix}.1`;
  }

  /**
   * With `offLinkClient`: two more machine-side addresses on the lab bridge. Each host reaches
   * `gateway` (where its SSH clients come from) through the first one, as a routed network would.
   */
  get clientGateways(): [string, string] {
    return [`${this.prefix}.2`, `${this.prefix}.3`];
  }

  /**
   * `offLinkClient`: hosts get a /32 address and no connected route, links to `clientGateways` only,
   * and the route `gateway/32 via clientGateways[0]`; without that route their SSH sessions stall.
   */
  static async create(
    hostCount: number,
    options: { sshdConfig?: string[]; offLinkClient?: boolean; detached?: boolean } = {},
  ): Promise<TestLab> {
    if (process.getuid?.() !== 0) throw new Error("the test hosts need root (network and mount namespaces)");
    const id = randomBytes(3).toString("hex");
    const used = usedRanges();
    let prefix = "";
    for (let attempt = 0; attempt < 50 && !prefix; attempt++) {
      const candidate = `198.${18 + (attempt % 2)}.${randomBytes(1)[0]}`;
      if (!used.includes(`"${candidate}.`)) prefix = candidate;
    }
    if (!prefix) throw new Error("no free /24 in 198.18.0.0/15 for the test bridge");
    const dir = mkdtempSync(join(tmpdir(), `pnt-${id}-`));
    const lab = new TestLab(id, dir, `pntbr${id}`, prefix, options.detached ?? false);
    try {
      run(["ip", "link", "add", lab.bridge, "type", "bridge"]);
      run(["ip", "addr", "add", `${lab.gateway}/24`, "dev", lab.bridge]);
      if (options.offLinkClient) {
        for (const address of lab.clientGateways) run(["ip", "addr", "add", `${address}/32`, "dev", lab.bridge]);
      }
      run(["ip", "link", "set", lab.bridge, "up"]);
      lab.writeAccounts();
      for (let i = 0; i < hostCount; i++) lab.hosts.push(await lab.startHost(i, options.sshdConfig ?? [], options.offLinkClient ?? false));
      return lab;
    } catch (err) {
      lab.destroy();
      throw err;
    }
  }

  /** passwd/shadow/group copies with two extra users, bind-mounted inside each test host only. */
  private writeAccounts(): void {
    const etc = join(this.dir, "etc");
    const home = join(this.dir, "home");
    mkdirSync(join(etc, "sudoers.d"), { recursive: true });
    mkdirSync(home, { recursive: true });
    const hash = run(["openssl", "passwd", "-6", USER_PASSWORD]).trim();
    const users = [
      [SUDO_USER, 4242],
      [PLAIN_USER, 4243],
    ] as const;
    writeFileSync(
      join(etc, "passwd"),
      readFileSync("/etc/passwd", "utf8") + users.map(([u, n]) => `${u}:x:${n}:${n}::${home}:/bin/sh\n`).join(""),
    );
    writeFileSync(
      join(etc, "shadow"),
      readFileSync("/etc/shadow", "utf8") + users.map(([u]) => `${u}:${hash}:19000:0:99999:7:::\n`).join(""),
      { mode: 0o640 },
    );
    writeFileSync(join(etc, "group"), readFileSync("/etc/group", "utf8") + users.map(([u, n]) => `${u}:x:${n}:\n`).join(""));
    writeFileSync(join(etc, "sudoers.d", "pnt"), `${SUDO_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    writeFileSync(join(etc, "bashrc"), "");
    writeFileSync(join(this.dir, "authorized_keys"), readFileSync(`${this.clientKeyPath}.pub`, "utf8"));
  }

  private async startHost(index: number, sshdConfig: string[], offLinkClient: boolean): Promise<TestHost> {
    const address = `${this.prefix}.${10 + index}`;
    const hostDir = join(this.dir, `h${index}`);
    mkdirSync(hostDir);
    const hostKeyPath = join(hostDir, "ssh_host_ed25519_key");
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKeyPath]);
    const config = join(hostDir, "sshd_config");
    writeFileSync(
      config,
      [
        `ListenAddress ${address}`,
        `HostKey ${hostKeyPath}`,
        `AuthorizedKeysFile ${join(this.dir, "authorized_keys")}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication yes",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PidFile none",
        "LogLevel ERROR",
        ...sshdConfig,
        "",
      ].join("\n"),
    );
    const etc = join(this.dir, "etc");
    const addressing = offLinkClient
      ? [
          `ip addr add ${address}/32 dev eth0`,
          "ip link set eth0 up",
          ...this.clientGateways.map((g) => `ip route add ${g}/32 dev eth0 scope link`),
          `ip route add ${this.gateway}/32 via ${this.clientGateways[0]}`,
        ]
      : [`ip addr add ${address}/24 dev eth0`, "ip link set eth0 up"];
    const script = [
      "set -e",
      `mount -t tmpfs -o mode=755 ${runMount(this.id)} /run`,
      "mkdir -p /run/netns /run/sshd",
      `for f in passwd shadow group; do mount --bind ${etc}/$f /etc/$f; done`,
      `mount --bind ${etc}/sudoers.d /etc/sudoers.d`,
      // A fresh machine's root has a plain shell start; this machine's (pyenv rehash, with a lock file
      // that a killed login leaves behind) would make every test host wait on the others.
      `[ -e /root/.bashrc ] && mount --bind ${etc}/bashrc /root/.bashrc || true`,
      "ip link set lo up",
      // After this line nothing writes to the pipe: a kept host must not die writing to a reader long gone.
      "echo ready; exec >/dev/null",
      "while ! ip link show eth0 >/dev/null 2>&1; do sleep 0.02; done",
      ...addressing,
      `exec /usr/sbin/sshd -D -e -f ${config}`,
    ].join("\n");
    // sshd's messages go to a file, not a pipe to this process, so that a kept host can outlive it.
    const log = join(hostDir, "sshd.log");
    const logFd = openSync(log, "a");
    const child = spawn("unshare", ["--net", "--mount", "--propagation", "private", "sh", "-c", script], {
      stdio: ["ignore", "pipe", logFd],
      detached: this.detached,
    });
    closeSync(logFd);
    this.children.push(child);
    const stderr = () => readFileSync(log, "utf8");
    await new Promise<void>((resolve, reject) => {
      // Only until ready: the log is gone once the lab is destroyed.
      const exited = (code: number | null) => reject(new Error(`test host ${index} exited (${code}): ${stderr()}`));
      child.once("exit", exited);
      child.stdout!.once("data", () => {
        child.off("exit", exited);
        resolve();
      });
    });
    const pid = child.pid!;
    const link = `pnt${this.id}h${index}`;
    run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", String(pid)]);
    this.namespaceLinks.push(link);
    run(["ip", "link", "set", link, "master", this.bridge]);
    run(["ip", "link", "set", link, "up"]);
    await waitForPort(address, 22, 10_000).catch((err) => {
      throw new Error(`${err.message}: ${stderr()}`);
    });
    const enter = (argv: Argv): Argv => ["nsenter", "-t", String(pid), "-n", "-m", "--", ...argv];
    const pub = readFileSync(`${hostKeyPath}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    return {
      index,
      address,
      hostKey: pub,
      pid,
      sh: (argv, options) => run(enter(argv), options),
      spawn: (argv) => {
        const p = spawn(enter(argv)[0], enter(argv).slice(1), { stdio: ["ignore", "pipe", "pipe"] });
        this.children.push(p);
        return p;
      },
      connection: (extra = {}) => ({ host: address, user: "root", privateKey: this.clientKey, hostKey: pub, ...extra }),
    };
  }

  private unhook(): void {
    process.removeListener("exit", this.exitHook);
    for (const signal of STOP_SIGNALS) process.removeListener(signal, this.signalHook);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.unhook();
    removeLab({
      id: this.id,
      hostPids: this.hosts.map((host) => host.pid),
      childPids: this.children.filter((child) => child.pid && child.exitCode === null).map((child) => child.pid!),
      links: this.namespaceLinks,
      bridge: this.bridge,
      dir: this.dir,
    });
  }

  /**
   * Lets the lab outlive this process (made `detached`, its hosts are in their own sessions and hold
   * no pipe to it); what `destroyKept` needs is returned. This object no longer removes it.
   */
  keep(): KeptLab {
    if (!this.detached) throw new Error("only a lab made with { detached: true } can be kept");
    this.destroyed = true;
    this.unhook();
    for (const child of this.children) child.unref();
    return {
      id: this.id,
      dir: this.dir,
      bridge: this.bridge,
      links: this.namespaceLinks,
      hosts: this.hosts.map((host) => ({ pid: host.pid, startTime: startTime(host.pid) ?? "" })),
    };
  }

  /** Removes a kept lab: its hosts' processes (only if still the same ones), links, bridge, files. */
  static destroyKept(kept: KeptLab): void {
    const running = kept.hosts.filter(keptHostRunning).map((host) => host.pid);
    removeLab({ ...kept, hostPids: running, childPids: running });
  }
}
