/**
 * Who holds a shared object on a host. Two stacks may manage one bridge, namespace or kernel setting;
 * each resource records itself as a holder, and the object is deleted (or the setting restored) only
 * when its last holder leaves. Records live under /run/pulumi-netns, a tmpfs cleared at boot like the
 * objects themselves. The decisions (join, leave) are pure; `transact` is the only part that runs.
 */
import { AlreadyExistsError, CommandFailedError } from "./errors";
import type { Argv, Host } from "./host";

export const HOLDERS_ROOT = "/run/pulumi-netns";

export interface HolderRecord<Holding = string> {
  /** The object the holders hold; another identity means the object was made again since. */
  identity: string;
  /** Holder token → what it holds (the kind of object; a sysctl key and its value). */
  holders: Record<string, Holding>;
}

/** Record file of an object: `area` is the kind of object, `namespace` its scope, `name` its name. */
export function holderPath(area: string, namespace: string | undefined, name: string): string {
  return [HOLDERS_ROOT, area, ...(namespace ? ["netns", namespace] : ["host"]), name].join("/");
}

/** The record when it is about this very object, else undefined (stale records are ignored). */
export function currentRecord<R extends HolderRecord<unknown>>(record: R | undefined, identity: string): R | undefined {
  return record?.identity === identity ? record : undefined;
}

export function join<R extends HolderRecord>(record: R | undefined, token: string, holds: string): R | undefined {
  return record && { ...record, holders: { ...record.holders, [token]: holds } };
}

export interface Leaving<R> {
  /** The record to keep, or undefined when no holder is left. */
  next: R | undefined;
  /** No other holder remains: the object (or setting) is this one's to remove (or restore). */
  last: boolean;
}

export function leave<R extends HolderRecord>(record: R | undefined, token: string | undefined): Leaving<R> {
  const holders = { ...record?.holders };
  if (token !== undefined) delete holders[token];
  const last = Object.keys(holders).length === 0;
  return { next: last ? undefined : ({ ...record, holders } as R), last };
}

export function parseRecord<R extends HolderRecord<unknown>>(path: string, text: string): R | undefined {
  if (text === "") return undefined;
  try {
    const record = JSON.parse(text) as R;
    if (typeof record.identity === "string" && typeof record.holders === "object" && record.holders !== null) return record;
  } catch {
    // Reported below.
  }
  throw new Error(`holder record ${path} is damaged; remove it if no other stack shares this object`);
}

/**
 * Script lines that take the host's one lock, shared by every stack and process, waiting at most `$wait`
 * seconds; held until the script ends. Steps that change what several stacks share run under it.
 */
export const TAKE_HOST_LOCK = `mkdir -p ${HOLDERS_ROOT}
exec 9>>${HOLDERS_ROOT}/lock
flock -w "$wait" 9`;

/** A shell script run as one remote step under the host's lock (set -e); its own arguments are $1…. */
export function underHostLock(host: Host, script: string, ...args: string[]): Argv {
  return [
    "sh",
    "-c",
    `set -e\nwait=$1\nshift\n${TAKE_HOST_LOCK}\n${script}`,
    "sh",
    String(lockWaitSeconds(host.commandTimeoutSeconds)),
    ...args,
  ];
}

/**
 * Checks under a lock that the record still reads `expected`, runs the command (if any), then writes
 * `next` atomically (or removes the record when `next` is empty). Exit 75: the record changed meanwhile.
 * The lock is waited for at most `wait` seconds, which `lockWaitSeconds` keeps well inside the client's
 * command timeout: a commit that went through is never reported as timed out.
 */
const COMMIT_SCRIPT = `set -e
wait=$1 file=$2 expected=$3 next=$4
shift 4
mkdir -p "\${file%/*}"
${TAKE_HOST_LOCK}
current=$(cat "$file" 2>/dev/null || true)
if [ "$current" != "$expected" ]; then echo "pulumi-netns: holder record changed meanwhile: $file" >&2; exit 75; fi
if [ $# -gt 0 ]; then "$@"; fi
if [ -n "$next" ]; then printf '%s\\n' "$next" >"$file.tmp"; mv -f "$file.tmp" "$file"; else rm -f "$file"; fi`;

export function commitArgv(path: string, expected: string, next: string, command: Argv = [], lockWait = lockWaitSeconds(undefined)): Argv {
  return ["sh", "-c", COMMIT_SCRIPT, "sh", String(lockWait), path, expected, next, ...command];
}

/** Half the host's command timeout (60 s unless set): the rest is for the command run under the lock. */
export const lockWaitSeconds = (commandTimeoutSeconds: number | undefined) => Math.max(1, Math.floor((commandTimeoutSeconds ?? 60) / 2));

export interface Decision<R> {
  next: R | undefined;
  /** Runs under the lock just before the record is written; a failure leaves the record as it was. */
  command?: Argv;
}

const CONFLICT = 75;
const ATTEMPTS = 20;

async function readRecordText(host: Host, path: string): Promise<string> {
  const result = await host.run(["cat", path], { allowFailure: true, readOnly: true });
  if (result.exitCode === 0) return result.stdout.trim();
  if (/No such file/.test(result.stderr)) return "";
  throw new CommandFailedError(host.label, result);
}

/**
 * Optimistic update of one record: `decide` looks at the record and the host and says what to write;
 * when another holder changed the record meanwhile, it is asked again. `decide` may run several times.
 */
export async function transact<R extends HolderRecord<unknown>>(
  host: Host,
  path: string,
  decide: (record: R | undefined) => Promise<Decision<R>>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const expected = await readRecordText(host, path);
    const { next, command } = await decide(parseRecord<R>(path, expected));
    const nextText = next ? JSON.stringify(next) : "";
    if (nextText === expected && !command) return;
    const result = await host.run(commitArgv(path, expected, nextText, command, lockWaitSeconds(host.commandTimeoutSeconds)), {
      allowFailure: true,
    });
    if (result.exitCode === 0) return;
    if (result.exitCode !== CONFLICT || attempt === ATTEMPTS) throw new CommandFailedError(host.label, result);
  }
}

/** The identity of a namespace: its nsfs inode and that inode's change time (inode numbers are reused). */
export async function namespaceIdentity(host: Host, namespace: string | undefined): Promise<string | undefined> {
  if (!namespace) return "host";
  const result = await host.run(["stat", "-L", "-c", "%i %z", `/var/run/netns/${namespace}`], { allowFailure: true, readOnly: true });
  if (result.exitCode === 0) return result.stdout.trim();
  if (/No such file/.test(result.stderr)) return undefined;
  throw new CommandFailedError(host.label, result);
}

/** The identity a record has while its maker's command runs: the object is `token`'s, made in that step. */
const madeBy = (token: string) => `made-by:${token}`;

/** The owners recorded as holders (values of holders that recorded one), for an error naming them. */
const recordedOwners = (record: HolderRecord | undefined) =>
  Object.values(record?.holders ?? {}).filter((holding) => holding.includes("@"));

/**
 * Records `token` as a holder of an object, making it when it is absent: the make command and a record
 * saying that `token` made it run in one remote step, so an interrupted create that runs again finds the
 * object its own. An object that is there already is taken over only with `adopt`, or when this token
 * made it or holds it. `identify` gives the object's identity now (undefined when absent); `holds` is
 * what the record keeps of this holder (its owner). Returns whether this token made the object.
 */
export async function hold(
  host: Host,
  path: string,
  token: string,
  holds: string,
  what: string,
  identify: () => Promise<string | undefined>,
  makeArgv: Argv,
  adopt: boolean,
): Promise<{ made: boolean }> {
  let made = false;
  for (let pass = 0; ; pass++) {
    let settled = false;
    await transact<HolderRecord>(host, path, async (record) => {
      const identity = await identify();
      if (identity === undefined) {
        if (pass > 2) throw new Error(`${host.label}: ${what} was made but is gone again`);
        return { next: { identity: madeBy(token), holders: { [token]: holds } }, command: makeArgv };
      }
      made ||= record?.identity === madeBy(token);
      const current = made ? record : currentRecord(record, identity);
      if (!made && !adopt && !(current && token in current.holders)) {
        const owners = recordedOwners(current);
        throw new AlreadyExistsError(host.label, `${what}${owners.length > 0 ? ` (held by ${owners.join(", ")})` : ""}`);
      }
      settled = true;
      return { next: { identity, holders: { ...current?.holders, [token]: holds } } };
    });
    if (settled) return { made };
  }
}

/**
 * Removes `token` from an object's holders; when none is left, `deleteArgv` runs (unless `deleteIfLast`
 * is false). `identify` gives the object's identity now, undefined when it is gone. Without a token (an
 * imported resource, which holds no record) the object is deleted only when nobody else holds it.
 */
export async function release(
  host: Host,
  path: string,
  token: string | undefined,
  identify: () => Promise<string | undefined>,
  deleteArgv: Argv,
  deleteIfLast = true,
): Promise<void> {
  const leaving = () =>
    transact<HolderRecord>(host, path, async (record) => {
      const identity = await identify();
      if (identity === undefined) return { next: undefined };
      const { next, last } = leave(currentRecord(record, identity), token);
      return { next, command: last && deleteIfLast ? deleteArgv : undefined };
    });
  // A delete that failed because the object went meanwhile (with its namespace, deleted side by side by a
  // program without dependencies, as one made by `pulumi import` is) is done: only its record is left to go.
  await leaving().catch(async (err) => {
    if ((await identify()) !== undefined) throw err;
    await leaving();
  });
}

/** A record file under HOLDERS_ROOT, its path read back as `holderPath` and `ownerRecordPath` build it. */
export interface HostRecord {
  /** "netns", "link", "sysctl" (holder records), "owner/addr", "owner/route", "owner/qdisc" (owner records). */
  area: string;
  namespace?: string;
  names: string[];
  text: string;
}

export function parseRecordListing(stdout: string): HostRecord[] {
  // `grep -rZ` prints each file's path, a NUL, then its line.
  return stdout.split("\n").flatMap((line) => {
    const [path, text] = line.split("\0");
    if (text === undefined || !path.startsWith(`${HOLDERS_ROOT}/`)) return [];
    const parts = path.slice(HOLDERS_ROOT.length + 1).split("/");
    const area = parts[0] === "owner" ? parts.splice(0, 2).join("/") : parts.shift()!;
    const namespace = parts[0] === "netns" ? parts[1] : undefined;
    return [{ area, namespace, names: parts.slice(namespace === undefined ? 1 : 2), text }];
  });
}

/** Every record on the host, in one command. */
export async function readRecords(host: Host): Promise<HostRecord[]> {
  const result = await host.run(["grep", "-rZ", "^", HOLDERS_ROOT], { allowFailure: true });
  // 1: no line anywhere (only the lock file); 2 for a missing root: nothing recorded yet.
  if (result.exitCode > 1 && !/No such file or directory/.test(result.stderr)) throw new CommandFailedError(host.label, result);
  return parseRecordListing(result.stdout);
}

/** Each holder of the records of `area` that recorded an owner, with the record's place. */
export function recordedHolders(records: HostRecord[], area: string, ownerOf: (holding: unknown) => unknown = (holding) => holding) {
  return records
    .filter((record) => record.area === area)
    .flatMap((record) => {
      const parsed = (() => {
        try {
          return JSON.parse(record.text) as HolderRecord<unknown>;
        } catch {
          return undefined;
        }
      })();
      return Object.entries(parsed?.holders ?? {}).flatMap(([token, holding]) => {
        const owner = ownerOf(holding);
        return typeof owner === "string" && owner.includes("@") ? [{ record, token, owner, holding }] : [];
      });
    });
}
