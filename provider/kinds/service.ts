import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { CommandFailedError, inNamespaceWords, OwnedElsewhereError } from "../errors";
import { namespaceName } from "../fields";
import { Argv, Host, inNamespace, inOneStep, readOnlyScript } from "../host";
import { defineKind, Props } from "../kind";
import { serviceSettingsShape } from "../kindSettings";
import {
  aliasOwner,
  objectOwner,
  ownerRecordPath,
  ownerRecords,
  recordedTag,
  removeOwnerRecordArgvs,
  writeOwnerRecordArgvs,
} from "../owner";

/**
 * A process supervised on the host without systemd: `setsid -f` starts a small `sh` supervisor in a
 * session of its own (so it outlives the SSH command and its process group is the service's), which
 * runs the command in the namespace, records its pid, restarts it by policy and keeps the log under a
 * cap (copy, then truncate: the command's O_APPEND output goes on at the start of the emptied file).
 * Runtime files live in SERVICES_ROOT; who owns the service is an owner record like an address's.
 */
export const SERVICES_ROOT = "/run/pulumi-netns-services";

const shape = {
  name: namespaceName.describe("Service name, unique per namespace on the host; names its runtime directory."),
  namespace: namespaceName.optional().describe("Namespace to run in; the host's own when unset."),
  ...serviceSettingsShape,
};

export type ServiceSpec = z.infer<z.ZodObject<typeof shape>>;

/** The service's runtime directory: pid files and log. */
export const serviceDirectory = (namespace: string | undefined, name: string) =>
  `${SERVICES_ROOT}/${namespace ? `netns/${namespace}` : "host"}/${name}`;
const recordPath = (namespace: string | undefined, name: string) => ownerRecordPath("service", namespace, name);

const AS_USER = 'user=$1; shift; exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- "$@"';

/** The argv the supervisor runs: in the namespace, as the user, with the environment, maybe through sh. */
export function serviceArgv(spec: Pick<ServiceSpec, "namespace" | "command" | "shell" | "environment" | "user">): Argv {
  const command = spec.shell ? ["sh", "-c", spec.command.join(" ")] : spec.command;
  const environment = Object.entries(spec.environment ?? {}).map(([key, value]) => `${key}=${value}`);
  // The user's own primary group, which setpriv cannot look up by itself.
  const asUser = spec.user ? ["sh", "-c", AS_USER, "sh", spec.user] : [];
  return inNamespace(spec.namespace, [...asUser, "env", "--", ...environment, ...command]);
}

/**
 * `ticks PID`: a process's start time in clock ticks since boot; with its pid, it names one process and
 * never a later one that reuses the pid. `-` for no process, and for a zombie, which is dead though not
 * yet reaped (where PID 1 does not reap). `group PID`: its process group. `alive PID TICKS`: that very
 * process runs.
 */
const TICKS = `stat_field() {
  field=$2
  line=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -; return; }
  line=\${line##*) }; set -- $line
  case $1 in Z|X) echo - ;; *) eval "echo \\\${$field}" ;; esac
}
ticks() { stat_field "$1" 20; }
group() { stat_field "$1" 3; }
alive() { [ -n "$1" ] && [ "$2" != - ] && [ "$(ticks "$1")" = "$2" ]; }`;

/**
 * The supervisor: $1 directory, $2 restart policy, $3 log cap in bytes, $4 working directory, then the
 * command. Files: `supervisor` (its pid and start time in ticks), `pid` (the command's pid, start ticks
 * and start time), `exit` (the last exit code), `log` and `log.1`.
 */
const SUPERVISOR = `dir=$1 restart=$2 cap=$3 cwd=$4; shift 4
${TICKS}
printf '%s %s\\n' "$$" "$(ticks $$)" >"$dir/supervisor"
stopping= child=
trap 'stopping=1; [ -z "$child" ] || kill -s TERM "$child" 2>/dev/null' TERM INT HUP
# The log's keeper ends with the supervisor, or with the service's files.
( while sleep 2 && [ -d "$dir" ] && kill -0 $$ 2>/dev/null; do
    size=$(stat -c %s "$dir/log" 2>/dev/null) || size=0
    [ "$size" -le "$cap" ] || { cp "$dir/log" "$dir/log.1"; : >"$dir/log"; }
  done ) </dev/null >/dev/null 2>&1 &
rotator=$!
trap 'kill "$rotator" 2>/dev/null' EXIT
# Not started: a pid file naming no process says so at once (start reports the log).
cd "\${cwd:-/}" || {
  echo "pulumi-netns: cannot enter the working directory $cwd" >>"$dir/log"; echo 1 >"$dir/exit"; echo "0 - -" >"$dir/pid"; exit 1
}
delay=1
while [ -z "$stopping" ]; do
  began=$(date +%s)
  "$@" </dev/null >>"$dir/log" 2>&1 &
  child=$!
  printf '%s %s %s\\n' "$child" "$(ticks "$child")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$dir/pid.new" && mv -f "$dir/pid.new" "$dir/pid"
  code=0; wait "$child" || code=$?
  while [ -z "$stopping" ] && kill -0 "$child" 2>/dev/null; do wait "$child" && code=0 || code=$?; done
  # Reaped: its pid may be another process's from now on.
  child=
  [ -z "$stopping" ] || break
  echo "$code" >"$dir/exit"
  echo "pulumi-netns: the command exited with code $code" >>"$dir/log"
  case $restart in never) break ;; on-failure) [ "$code" -ne 0 ] || break ;; esac
  [ $(( $(date +%s) - began )) -lt 30 ] || delay=1
  sleep "$delay"
  [ "$delay" -ge 16 ] || delay=$((delay * 2))
done`;

/** Starts the supervisor, replacing files of an earlier run, and waits (5 s at most) until the command's pid is recorded. */
const START = `dir=$1; shift
mkdir -p "$dir" && rm -f "$dir/pid" "$dir/exit" "$dir/log.1" && : >"$dir/log" || exit 1
setsid -f sh -c "$@" </dev/null >/dev/null 2>&1
i=0
until [ -s "$dir/pid" ]; do
  i=$((i + 1)); [ "$i" -le 50 ] || { echo "pulumi-netns: the supervisor did not start" >&2; exit 1; }
  sleep 0.1
done`;

export function startArgv(spec: ServiceSpec, owner: string | undefined): Argv {
  const dir = serviceDirectory(spec.namespace, spec.name);
  const start: Argv = [
    "sh",
    "-c",
    START,
    "sh",
    dir,
    SUPERVISOR,
    "sh",
    dir,
    spec.restart,
    String(spec.logMaxBytes),
    spec.workingDirectory ?? "",
    ...serviceArgv(spec),
  ];
  return inOneStep(...writeOwnerRecordArgvs(recordPath(spec.namespace, spec.name), owner), start);
}

/**
 * What `status` prints: the command's pid, its start time, whether it is that process still, whether
 * the supervisor is; exit 3 when the service has no files (never started, or the host rebooted).
 */
const STATUS = readOnlyScript(`dir=$1
${TICKS}
read -r pid pidticks started <"$dir/pid" 2>/dev/null || exit 3
read -r sup supticks <"$dir/supervisor" 2>/dev/null || sup=
running=false; ! alive "$pid" "$pidticks" || running=true
supervised=false; ! alive "$sup" "$supticks" || supervised=true
echo "$pid $started $running $supervised"`);

export const statusArgv = (dir: string): Argv => ["sh", "-c", STATUS, "sh", dir];

export interface ServiceStatus {
  pid: number;
  startTime: string;
  running: boolean;
  supervised: boolean;
}

export function parseStatus(stdout: string): ServiceStatus {
  const [pid, startTime, running, supervised] = stdout.trim().split(" ");
  if (!/^\d+$/.test(pid ?? "") || !startTime) throw new Error(`unexpected service status: ${JSON.stringify(stdout.trim())}`);
  return { pid: Number(pid), startTime, running: running === "true", supervised: supervised === "true" };
}

/**
 * Stops the supervisor's process group and the command (which may have left the group): TERM, then KILL
 * after $2 seconds; then removes the files. Only processes whose start ticks match the records are signalled
 * (the group only while its supervisor was alive at the start), so a pid reused since is never hit.
 */
const STOP = `dir=$1 grace=$2
${TICKS}
read -r pid pidticks rest <"$dir/pid" 2>/dev/null || pid=
read -r sup supticks <"$dir/supervisor" 2>/dev/null || sup=
# The group: the supervisor's, while it runs, or still the command's after the supervisor died.
pgroup=
if alive "$sup" "$supticks"; then pgroup=$sup
elif alive "$pid" "$pidticks" && [ "$(group "$pid")" = "$sup" ]; then pgroup=$sup; fi
signal() {
  [ -z "$pgroup" ] || kill -s "$1" -- "-$pgroup" 2>/dev/null
  ! alive "$pid" "$pidticks" || kill -s "$1" "$pid" 2>/dev/null
  true
}
signal TERM
i=0
while { alive "$sup" "$supticks" || alive "$pid" "$pidticks"; } && [ "$i" -lt $((grace * 10)) ]; do
  sleep 0.1; i=$((i + 1))
done
# Also what the command left in the group (its own children), while the group has members.
[ -z "$pgroup" ] || kill -0 -- "-$pgroup" 2>/dev/null || pgroup=
signal KILL
rm -rf "$dir"`;

export function stopArgv(namespace: string | undefined, name: string, graceSeconds: number, owner: string | undefined): Argv {
  const stop: Argv = ["sh", "-c", STOP, "sh", serviceDirectory(namespace, name), String(graceSeconds)];
  return inOneStep(stop, ...removeOwnerRecordArgvs(recordPath(namespace, name), owner));
}

/**
 * Waits at most $2 seconds for the readiness probe ($3 `listening`: prints something; `exits`: exits 0);
 * exit 2 on time out, 3 when the supervisor is gone.
 */
const WAIT_READY = `dir=$1 seconds=$2 mode=$3; shift 3
${TICKS}
read -r sup supticks <"$dir/supervisor" 2>/dev/null || sup=
end=$(( $(date +%s) + seconds ))
while :; do
  if [ "$mode" = listening ]; then out=$("$@" 2>/dev/null) && [ -n "$out" ] && exit 0
  else timeout "$seconds" "$@" >/dev/null 2>&1 && exit 0; fi
  alive "$sup" "$supticks" || exit 3
  [ "$(date +%s)" -lt "$end" ] || exit 2
  sleep 0.2
done`;

export function waitReadyArgv(spec: ServiceSpec, seconds: number): Argv {
  const probe =
    spec.readiness!.tcpPort !== undefined
      ? inNamespace(spec.namespace, ["ss", "-Hltn", `sport = :${spec.readiness!.tcpPort}`])
      : inNamespace(spec.namespace, spec.readiness!.command!);
  const mode = spec.readiness!.tcpPort !== undefined ? "listening" : "exits";
  return ["sh", "-c", WAIT_READY, "sh", serviceDirectory(spec.namespace, spec.name), String(seconds), mode, ...probe];
}

const describe = (host: Host, spec: Pick<ServiceSpec, "name" | "namespace">) =>
  `${host.label}: service "${spec.name}"${inNamespaceWords(spec.namespace)}`;

/** The service's process now; undefined when it has no files (never started, or the host rebooted). */
export async function serviceStatus(host: Host, namespace: string | undefined, name: string): Promise<ServiceStatus | undefined> {
  const result = await host.run(statusArgv(serviceDirectory(namespace, name)), { allowFailure: true, readOnly: true });
  if (result.exitCode === 3) return undefined;
  if (result.exitCode !== 0) throw new CommandFailedError(host.label, result);
  return parseStatus(result.stdout);
}

/** The last lines of the log, for an error message. */
async function logTail(host: Host, spec: ServiceSpec): Promise<string> {
  const result = await host.run(["tail", "-n", "15", `${serviceDirectory(spec.namespace, spec.name)}/log`], { allowFailure: true });
  const text = result.stdout.trim();
  return text ? `\nlast lines of its log:\n${text}` : "\n(its log is empty)";
}

async function waitUntilReady(host: Host, spec: ServiceSpec): Promise<void> {
  if (!spec.readiness) return;
  // Waited for in slices that fit in one command's timeout.
  const slice = Math.max(1, (host.commandTimeoutSeconds ?? 60) - 10);
  let left = spec.readiness.timeoutSeconds;
  for (;;) {
    const seconds = Math.min(left, slice);
    const result = await host.run(waitReadyArgv(spec, seconds), { allowFailure: true });
    if (result.exitCode === 0) return;
    left -= seconds;
    const probe =
      spec.readiness.tcpPort !== undefined
        ? `TCP port ${spec.readiness.tcpPort} listening`
        : `\`${spec.readiness.command!.join(" ")}\` exiting 0`;
    if (result.exitCode === 3)
      throw new Error(`${describe(host, spec)} stopped before it was ready (${probe})${await logTail(host, spec)}`);
    if (result.exitCode !== 2) throw new CommandFailedError(host.label, result);
    if (left <= 0)
      throw new Error(
        `${describe(host, spec)} was not ready (${probe}) within ${spec.readiness.timeoutSeconds} s${await logTail(host, spec)}`,
      );
  }
}

/** Starts the service (stopping an earlier run of it first) and waits until it is ready; a failed start leaves nothing running. */
async function start(host: Host, spec: ServiceSpec, owner: string | undefined): Promise<Props> {
  await host.run(stopArgv(spec.namespace, spec.name, spec.stopTimeoutSeconds, undefined));
  try {
    await host.run(startArgv(spec, owner));
    await waitUntilReady(host, spec);
    const now = await serviceStatus(host, spec.namespace, spec.name);
    if (!up(now)) throw new Error(`${describe(host, spec)} exited right after it started${await logTail(host, spec)}`);
    return observed(spec, now!);
  } catch (err) {
    await host.run(stopArgv(spec.namespace, spec.name, spec.stopTimeoutSeconds, owner));
    throw err;
  }
}

/** Running means supervised too: a command whose supervisor died is restarted under a new one. */
const up = (now: ServiceStatus | undefined) => now !== undefined && now.running && now.supervised;

/** What the host says of the service; `replaced` is cleared (null: unset) by every create and update. */
const observed = (spec: Pick<ServiceSpec, "namespace" | "name">, now: ServiceStatus): Props => ({
  pid: now.pid,
  startTime: now.startTime,
  running: up(now),
  logPath: `${serviceDirectory(spec.namespace, spec.name)}/log`,
  replaced: null,
});

const REPLACE_ON = ["name", "namespace"];

/** What the program asks of the process: a change of any of it restarts the service. */
const PROCESS_FIELDS = ["command", "shell", "environment", "workingDirectory", "user", "restart", "logMaxBytes"] as const;

export const serviceKind = defineKind({
  name: "Service",
  description:
    "A long-running process in a namespace, supervised on the host without systemd: restarted by policy, its " +
    "output in a log file with a size cap. Create waits for its readiness check; refresh sees a dead or replaced " +
    "process; destroy stops its whole process group (TERM, then KILL) and removes its files.",
  shape,
  replaceOn: REPLACE_ON,
  outputs: {
    pid: z.number().describe("Process id of the command (not of its supervisor)."),
    startTime: z.string().describe("When the command was started, UTC."),
    running: z.boolean().describe("Whether that process is still running, under its supervisor."),
    replaced: z
      .boolean()
      .optional()
      .describe("Set by refresh when the supervisor started the command again since the last `up` (another pid); the next `up` clears it."),
    logPath: z.string().describe("Its log file on the host."),
  },
  adoptable: false,
  importing: {
    refused:
      "a Service's supervisor, pid records and log are what pulumi-netns makes when it starts the command, and a process started " +
      "another way has none of them to read back. Declare the Service in the program instead (after stopping that process); " +
      "`pulumi up` starts it.",
  },
  async create(host, spec, _adopt, owner) {
    const tag = await recordedTag(host, recordPath(spec.namespace, spec.name));
    const tagged = aliasOwner(tag, owner);
    if (tagged && tagged !== "ours")
      throw new OwnedElsewhereError(host.label, `service "${spec.name}"${inNamespaceWords(spec.namespace)}`, tagged.other);
    const outs = await start(host, spec, owner);
    return { id: `${spec.namespace ?? ""}/${spec.name}`, observed: outs };
  },
  async read(host, _id, olds) {
    const spec = olds as unknown as ServiceSpec;
    const now = await serviceStatus(host, spec.namespace, spec.name);
    // Refresh reports what the provider's diff sees, and a new pid is no input: it is said by `replaced`.
    return now && { ...observed(spec, now), ...(olds.replaced === true || now.pid !== olds.pid ? { replaced: true } : {}) };
  },
  async update(host, _id, olds, news) {
    // As JSON (state has no undefined, a parsed record may lack a prototype), in any key order.
    const plain = (value: unknown) => JSON.parse(JSON.stringify(value ?? null));
    const unchanged = PROCESS_FIELDS.every((key) => isDeepStrictEqual(plain(olds[key]), plain(news[key])));
    const now = await serviceStatus(host, news.namespace, news.name);
    if (unchanged && up(now)) return observed(news, now!);
    return start(host, news, objectOwner(REPLACE_ON, olds));
  },
  async delete(host, _id, olds) {
    const spec = olds as unknown as ServiceSpec;
    await host.run(stopArgv(spec.namespace, spec.name, spec.stopTimeoutSeconds ?? 10, objectOwner(REPLACE_ON, olds)));
  },
  async tagged(_host, source) {
    return ownerRecords(await source.records(), "service").map(({ owner, namespace, names }) => ({
      owner,
      id: `${namespace ?? ""}/${names[0]}`,
      olds: { namespace, name: names[0], owner },
      what: `service "${names[0]}"${inNamespaceWords(namespace)}`,
    }));
  },
  /** A process that died (and was not restarted) is drift: the next update starts it again. One replaced is drift too. */
  drift: (_id, olds) => [...(olds.running === false ? ["running"] : []), ...(olds.replaced === true ? ["replaced"] : [])],
});
