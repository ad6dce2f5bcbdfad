import { z } from "zod";
import { CommandFailedError } from "../errors";
import { namespaceName } from "../fields";
import { Argv, Host, inNamespace, readOnlyScript } from "../host";
import { namespaceGone } from "../iproute";
import { defineKind, neverCollides, Props } from "../kind";
import { CheckTarget, checkTarget, targetKey } from "../kindSettings";
import { ownerToken } from "../owner";

/** One target's result: attempts that got through, attempts made, the mean ICMP round trip, the last failure's words. */
export interface ProbeResult {
  ok: number;
  attempts: number;
  rttMs?: number;
  reason?: string;
}

/**
 * Probes side by side, at most this many at once: each is a few processes, and the checks of all the nodes
 * of a big lab run side by side on the same host.
 */
const PROBES_AT_ONCE = 8;

/**
 * Probes the targets, inside the namespace: $1 attempts, $2 seconds per attempt, then PROTOCOL ADDRESS
 * PORT for each target. Each prints one line, `INDEX OK ATTEMPTS RTT REASON` (one write, so lines of
 * probes running side by side do not mix).
 */
const PROBE = readOnlyScript(`count=$1 timeout=$2; shift 2
oneline() { tr '\\n' ' ' | sed 's/  */ /g; s/ $//'; }
probe() {
  i=$1 protocol=$2 address=$3 port=$4 ok=0 rtt=- reason=
  if [ "$protocol" = icmp ]; then
    out=$(ping -n -q -c "$count" -i 0.2 -W "$timeout" "$address" 2>&1)
    ok=$(printf '%s\\n' "$out" | sed -n 's/.* \\([0-9][0-9]*\\) \\(packets \\)\\{0,1\\}received.*/\\1/p')
    rtt=$(printf '%s\\n' "$out" | sed -n 's|^r[^=]*= [0-9.]*/\\([0-9.]*\\)/.*|\\1|p')
    [ -n "$ok" ] || ok=0
    [ -n "$rtt" ] || rtt=-
    [ "$ok" -gt 0 ] || reason=$(printf '%s\\n' "$out" | grep -v '^$' | grep -v -e '^PING' -e '^---' -e 'packets transmitted' | oneline)
    [ -n "$reason" ] || [ "$ok" -gt 0 ] || reason="no reply within $timeout s"
  else
    n=0
    while [ "$n" -lt "$count" ]; do
      n=$((n + 1))
      if [ "$protocol" = tcp ]; then
        out=$(timeout "$timeout" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$address" "$port" 2>&1)
      else
        out=$(timeout "$timeout" bash -c 'exec 3<>"/dev/udp/$0/$1" && printf "pulumi-netns\\n" >&3 &&
          IFS= read -r -n 1 -t "$2" reply <&3' "$address" "$port" "$timeout" 2>&1)
      fi
      case $? in
        0) ok=$((ok + 1)) ;;
        124) reason="no answer within $timeout s" ;;
        *) reason=$(printf '%s\\n' "$out" | sed -n '$s/^.*: //p'); [ -n "$reason" ] || reason="no reply" ;;
      esac
    done
  fi
  printf '%s %s %s %s %s\\n' "$i" "$ok" "$count" "$rtt" "$reason"
}
i=0
while [ $# -ge 3 ]; do
  probe "$i" "$1" "$2" "$3" &
  i=$((i + 1)); shift 3
  [ $((i % ${PROBES_AT_ONCE})) -ne 0 ] || wait
done
wait`);

export function probeArgv(namespace: string | undefined, targets: CheckTarget[], attempts: number, timeoutSeconds: number): Argv {
  const words = targets.flatMap((t) => [t.protocol, t.address, String(t.port ?? 0)]);
  return inNamespace(namespace, ["sh", "-c", PROBE, "sh", String(attempts), String(timeoutSeconds), ...words]);
}

export function parseProbes(stdout: string, count: number): ProbeResult[] {
  const results: ProbeResult[] = Array.from({ length: count }, () => ({ ok: 0, attempts: 0, reason: "the probe did not report" }));
  for (const line of stdout.split("\n")) {
    const match = /^(\d+) (\d+) (\d+) (\S+) ?(.*)$/.exec(line);
    if (!match || Number(match[1]) >= count) continue;
    const [, index, ok, attempts, rtt, reason] = match;
    results[Number(index)] = {
      ok: Number(ok),
      attempts: Number(attempts),
      ...(rtt !== "-" ? { rttMs: Number(rtt) } : {}),
      ...(reason ? { reason } : {}),
    };
  }
  return results;
}

/** What was seen, in words that stay the same from run to run while nothing changes (refresh compares them). */
export function seen(result: ProbeResult, limits: Pick<CheckTarget, "maxLossPercent" | "maxRttMs">): string {
  if (result.ok === 0) return "unreachable";
  const loss = Math.round((100 * (result.attempts - result.ok)) / result.attempts);
  if (limits.maxLossPercent !== undefined && loss > limits.maxLossPercent)
    return `reachable with ${loss}% loss (limit ${limits.maxLossPercent}%)`;
  if (limits.maxRttMs !== undefined && result.rttMs !== undefined && result.rttMs > limits.maxRttMs) {
    return `reachable in ${result.rttMs} ms on average (limit ${limits.maxRttMs} ms)`;
  }
  return "reachable";
}

export interface CheckSpec {
  namespace?: string;
  from?: string;
  targets: CheckTarget[];
  attempts: number;
  timeoutSeconds: number;
}

/** Targets whose observation is not what they expect. */
export function unmet(spec: Pick<CheckSpec, "targets">, observed: Record<string, string>): CheckTarget[] {
  return spec.targets.filter((t) => observed[targetKey(t)] !== t.expect);
}

/** The longest one batch of PROBES_AT_ONCE may take: pings go 0.2 s apart; each connect may time out. */
const batchSeconds = (spec: Pick<CheckSpec, "attempts" | "timeoutSeconds">, targets: CheckTarget[]) =>
  targets.every((t) => t.protocol === "icmp") ? spec.attempts * 0.2 + spec.timeoutSeconds : spec.attempts * spec.timeoutSeconds;

/**
 * The targets probed, in as many commands as it takes for each to end within the host's command time
 * limit. A namespace that is gone (a host rebooted) reaches nothing: refresh says so, and `up` makes it again first.
 */
async function runProbes(host: Host, spec: CheckSpec, targets: CheckTarget[]): Promise<ProbeResult[]> {
  const batches = Math.max(1, Math.floor(((host.commandTimeoutSeconds ?? 60) - 10) / batchSeconds(spec, targets)));
  const results: ProbeResult[] = [];
  for (let from = 0; from < targets.length; from += batches * PROBES_AT_ONCE) {
    const part = targets.slice(from, from + batches * PROBES_AT_ONCE);
    const result = await host.run(probeArgv(spec.namespace, part, spec.attempts, spec.timeoutSeconds), {
      allowFailure: true,
      readOnly: true,
    });
    if (namespaceGone(result))
      return targets.map(() => ({ ok: 0, attempts: spec.attempts, reason: `namespace "${spec.namespace}" is gone` }));
    if (result.exitCode !== 0) throw new CommandFailedError(host.label, result);
    results.push(...parseProbes(result.stdout, part.length));
  }
  return results;
}

/**
 * Every target probed; one expected reachable that got nothing through is probed once more, after the
 * others: a first packet lost while its neighbour was being resolved is not a broken lab.
 */
async function probe(host: Host, spec: CheckSpec): Promise<{ observed: Record<string, string>; results: ProbeResult[] }> {
  const results = await runProbes(host, spec, spec.targets);
  const again = spec.targets.flatMap((t, i) => (results[i].ok === 0 && t.expect === "reachable" ? [i] : []));
  if (again.length > 0) {
    const second = await runProbes(
      host,
      spec,
      again.map((i) => spec.targets[i]),
    );
    again.forEach((index, k) => (results[index] = second[k]));
  }
  const observed = Object.fromEntries(spec.targets.map((t, i) => [targetKey(t), seen(results[i], t)]));
  return { observed, results };
}

/** Runs the probes and fails, naming both ends and what was seen, when any target is not as expected. */
async function verify(host: Host, spec: CheckSpec): Promise<Props> {
  const { observed, results } = await probe(host, spec);
  const failed = unmet(spec, observed);
  if (failed.length > 0) {
    const where = `${spec.namespace ? `namespace "${spec.namespace}"` : "the host's own namespace"} on ${host.label}`;
    const source = spec.from ? `${spec.from} (${where})` : where;
    const lines = failed.map((t) => {
      const r = results[spec.targets.indexOf(t)];
      const name = t.label ? `${t.label} (${targetKey(t)})` : targetKey(t);
      const detail = `${r.ok} of ${r.attempts} attempts got through${r.reason ? `; ${r.reason}` : ""}`;
      return `  to ${name}: expected ${t.expect}, seen ${observed[targetKey(t)]} (${detail})`;
    });
    throw new Error(`check from ${source} failed:\n${lines.join("\n")}`);
  }
  return { observed };
}

export const checkKind = defineKind({
  name: "Check",
  description:
    "Declared reachability from a namespace: ICMP, a TCP connect or a UDP reply, each target expected reachable or " +
    "unreachable, with optional limits on loss and round trip. Create and update fail `pulumi up` when a target is not " +
    "as expected; refresh runs the probes again, so `pulumi refresh --expect-no-changes` tells whether the lab still works.",
  shape: {
    namespace: namespaceName.optional().describe("Namespace the probes run in; the host's own when unset."),
    from: z.string().max(200).optional().describe('How messages name the source (e.g. "node h1").'),
    targets: z.array(checkTarget).min(1).max(4096).describe("Where to probe, and what to expect of each."),
    attempts: z.number().int().min(1).max(100).default(3).describe("Pings or connects per target."),
    timeoutSeconds: z.number().int().min(1).max(30).default(2).describe("Seconds one attempt waits for its answer."),
    triggers: z
      .array(z.string())
      .optional()
      .describe("Any change of these runs the check again on the next `up` (a Lab passes its plan's hash)."),
  },
  refine(spec, ctx) {
    const keys = spec.targets.map(targetKey);
    keys.forEach((key, i) => {
      if (keys.indexOf(key) !== i) ctx.addIssue({ code: "custom", path: ["targets", i], message: `${key} is listed twice` });
    });
  },
  replaceOn: [],
  collides: neverCollides,
  outputs: {
    observed: z
      .record(z.string(), z.string())
      .describe('Target ("icmp 10.0.0.2", "tcp 10.0.0.2:80") → what was seen: "reachable", "unreachable", or reachable over a limit.'),
  },
  adoptable: false,
  importing: {
    refused:
      "a Check is no object on the host but probes, run by create, update and refresh. " +
      "Declare it in the program instead; `pulumi up` runs it.",
  },
  async create(host, spec, _adopt, owner) {
    return { id: `check-${ownerToken(owner)}`, observed: await verify(host, spec) };
  },
  async read(host, _id, olds) {
    const { observed } = await probe(host, olds as unknown as CheckSpec);
    return { observed };
  },
  update: (host, _id, _olds, news) => verify(host, news),
  async delete() {
    // Nothing on the host.
  },
  async tagged() {
    return [];
  },
  /** What refresh saw that the targets do not expect: the next `up` runs the check again (and fails while it is so). */
  drift: (_id, olds, news) =>
    typeof olds.observed === "object" &&
    olds.observed !== null &&
    unmet(news as unknown as CheckSpec, olds.observed as Record<string, string>).length > 0
      ? ["observed"]
      : [],
});
