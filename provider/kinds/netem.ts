/**
 * Link impairment with netem as an interface's root qdisc. Every create and update sends the whole
 * desired state with `tc qdisc replace`, unset fields as zero, so nothing set before lingers.
 */
import { CommandFailedError, inNamespaceWords } from "../errors";
import { interfaceName, namespaceName } from "../fields";
import { Argv, CommandResult, Host, inNamespace, inOneStep } from "../host";
import { runUnlessGone } from "../iproute";
import { defineKind, namespacedIdentity, neverCollides } from "../kind";
import { impairmentShape, NETEM_MAX_LIMIT } from "../kindSettings";
import { mayTakeOver, ownerRecordPath, ownerRecords, recordedTag, removeOwnerRecordArgvs, writeOwnerRecordArgvs } from "../owner";

/** Where the qdisc records its owner (owner.ts). */
const recordPath = (spec: Pick<NetemSpec, "device" | "namespace">) => ownerRecordPath("qdisc", spec.namespace, spec.device);

interface NetemSpec {
  device: string;
  namespace?: string;
  delayMs: number;
  jitterMs: number;
  lossPercent: number;
  corruptPercent: number;
  duplicatePercent: number;
  reorderPercent: number;
  rateKbit: number;
  limit?: number;
}

type Impairment = Omit<NetemSpec, "device" | "namespace" | "limit"> & { limit: number };

/** tc's own limit; at 100 ms on 1 Gbit/s it drops most packets. */
const TC_DEFAULT_LIMIT = 1000;
/** veth has no line rate; when no rate is asked for, assume traffic as fast as a 10 Gbit/s link. */
const ASSUMED_BITS_PER_SECOND = 10_000_000_000;
const FULL_FRAME_BYTES = 1500;

/** Room for every full-size frame sent during the delay (with jitter) at the rate, twice over. */
export function defaultLimit(spec: Pick<NetemSpec, "delayMs" | "jitterMs" | "rateKbit">): number {
  const bitsPerSecond = spec.rateKbit > 0 ? spec.rateKbit * 1000 : ASSUMED_BITS_PER_SECOND;
  const inFlight = Math.ceil(((bitsPerSecond / 8) * ((spec.delayMs + spec.jitterMs) / 1000)) / FULL_FRAME_BYTES);
  return Math.min(NETEM_MAX_LIMIT, Math.max(TC_DEFAULT_LIMIT, 2 * inFlight));
}

const percent = (value: number) => `${value}%`;
const micros = (ms: number) => `${Math.round(ms * 1000)}us`;

/**
 * Every field, zeros included: on an existing netem, replace keeps corrupt, reorder and rate when
 * they are not given (seen on Linux 6.1), so leaving one out would not turn it off.
 */
export function netemReplaceArgv(spec: NetemSpec): Argv {
  return inNamespace(spec.namespace, [
    "tc",
    "qdisc",
    "replace",
    "dev",
    spec.device,
    "root",
    "netem",
    "limit",
    String(spec.limit ?? defaultLimit(spec)),
    "delay",
    micros(spec.delayMs),
    micros(spec.jitterMs),
    "loss",
    "random",
    percent(spec.lossPercent),
    "corrupt",
    percent(spec.corruptPercent),
    "duplicate",
    percent(spec.duplicatePercent),
    "reorder",
    percent(spec.reorderPercent),
    "rate",
    `${spec.rateKbit}kbit`,
  ]);
}

/** Back to the interface's default qdisc (noqueue on veth, pfifo_fast or mq elsewhere). */
export const netemDeleteArgv = (spec: Pick<NetemSpec, "device" | "namespace">): Argv =>
  inNamespace(spec.namespace, ["tc", "qdisc", "del", "dev", spec.device, "root"]);

export const netemShowArgv = (spec: Pick<NetemSpec, "device" | "namespace">): Argv =>
  inNamespace(spec.namespace, ["tc", "-j", "qdisc", "show", "dev", spec.device]);

interface QdiscJson {
  kind: string;
  handle: string;
  root?: boolean;
  options?: {
    limit: number;
    delay?: { delay: number; jitter: number };
    "loss-random"?: { loss: number };
    corrupt?: { corrupt: number };
    duplicate?: { duplicate: number };
    reorder?: { reorder: number };
    rate?: { rate: number };
  };
}

export interface RootQdisc {
  kind: string;
  /** The kernel's default qdisc has handle 0; anything else was put there by someone. */
  isDefault: boolean;
  netem?: Impairment;
}

/**
 * The root qdisc from `tc -j qdisc show dev X`. JSON gives delay in seconds, probabilities as
 * fractions and the rate in bytes/s; this converts them back to the units of the inputs.
 */
export function parseRootQdisc(stdout: string): RootQdisc {
  const root = (JSON.parse(stdout.trim() || "[]") as QdiscJson[]).find((q) => q.root);
  // tc lists nothing for an interface that was never up: it still has the kernel's "noop".
  if (!root) return { kind: "noop", isDefault: true };
  const o = root.options;
  // tc prints times and fractions with six significant digits, and so many the value in the inputs' units
  // has: a loss of 0.07 reads 7 %, not 7.000000000000001.
  const scaled = (value: number | undefined, factor: number) => Number(((value ?? 0) * factor).toPrecision(6));
  const netem =
    root.kind === "netem" && o
      ? {
          delayMs: scaled(o.delay?.delay, 1000),
          jitterMs: scaled(o.delay?.jitter, 1000),
          lossPercent: scaled(o["loss-random"]?.loss, 100),
          corruptPercent: scaled(o.corrupt?.corrupt, 100),
          duplicatePercent: scaled(o.duplicate?.duplicate, 100),
          reorderPercent: scaled(o.reorder?.reorder, 100),
          rateKbit: ((o.rate?.rate ?? 0) * 8) / 1000,
          limit: o.limit,
        }
      : undefined;
  return { kind: root.kind, isDefault: root.handle === "0:", netem };
}

/**
 * The kernel keeps delays in clock ticks and probabilities in 1/2³² steps, and tc prints six
 * significant digits (0.5 ms reads back as 0.499 ms, 1234.567 ms as 1234.57 ms): a value within
 * that rounding (1/100000 of it, at least 0.002 ms or percentage points) reads back as asked.
 */
export function asAsked(observed: Impairment, asked: Partial<Impairment>): Impairment {
  const near = (seen: number, wanted: unknown) =>
    typeof wanted === "number" && Math.abs(seen - wanted) <= Math.max(1e-5 * Math.abs(wanted), 2e-3) ? wanted : seen;
  return Object.fromEntries(Object.entries(observed).map(([key, seen]) => [key, near(seen, asked[key as keyof Impairment])])) as Impairment;
}

function explainFailure(hostLabel: string, result: CommandResult): Error {
  if (/qdisc kind is unknown/.test(result.stderr)) {
    return new Error(
      `${hostLabel}: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM; load it with \`modprobe sch_netem\` where it is a module)`,
    );
  }
  return new CommandFailedError(hostLabel, result);
}

/** The interface's root qdisc, or undefined when the interface (or its namespace) is gone. */
async function readRoot(host: Host, spec: Pick<NetemSpec, "device" | "namespace">): Promise<RootQdisc | undefined> {
  const result = await runUnlessGone(host, netemShowArgv(spec), { readOnly: true });
  return result && parseRootQdisc(result.stdout);
}

/** Sets the whole impairment; with the owner's record in the same step when `owner` is given. */
async function apply(host: Host, spec: NetemSpec, owner?: string): Promise<Impairment> {
  const result = await host.run(inOneStep(netemReplaceArgv(spec), ...writeOwnerRecordArgvs(recordPath(spec), owner)), {
    allowFailure: true,
  });
  if (result.exitCode !== 0) throw explainFailure(host.label, result);
  const netem = (await readRoot(host, spec))?.netem;
  if (!netem) throw new Error(`${host.label}: netem on "${spec.device}" was set but cannot be read back`);
  return asAsked(netem, spec);
}

export const netemKind = defineKind({
  name: "Netem",
  description:
    "Link impairment on an interface (`tc qdisc replace dev X root netem`): delay, jitter, loss, corruption, duplication, reordering " +
    "and a rate limit. netem acts on packets leaving the interface only; impair both ends of a cable for both directions.",
  shape: {
    device: interfaceName.describe("Interface whose outgoing packets are impaired."),
    namespace: namespaceName.optional().describe("Namespace of the interface; the host's own when unset."),
    ...impairmentShape,
  },
  refine(spec, ctx) {
    if (spec.jitterMs > 0 && spec.delayMs === 0)
      ctx.addIssue({ code: "custom", path: ["jitterMs"], message: "jitter needs a delay (`delayMs` > 0)" });
    if (spec.reorderPercent > 0 && spec.delayMs === 0) {
      ctx.addIssue({ code: "custom", path: ["reorderPercent"], message: "reordering needs a delay (`delayMs` > 0)" });
    }
  },
  replaceOn: ["device", "namespace"],
  collides: neverCollides,
  adoptable: true,
  importing: { idForm: "[NAMESPACE]/DEVICE", identify: (id) => namespacedIdentity(id, "device") },
  async create(host, spec, adopt, owner) {
    const root = await readRoot(host, spec);
    if (!root) throw new Error(`${host.label}: interface "${spec.device}" does not exist${inNamespaceWords(spec.namespace)}`);
    // Only the kernel's default qdisc is free to take (or this resource's own, from an interrupted create);
    // replacing anything else would drop someone's setup.
    if (!root.isDefault)
      mayTakeOver(host.label, `a ${root.kind} root qdisc on "${spec.device}"`, await recordedTag(host, recordPath(spec)), owner, adopt);
    const observed = await apply(host, spec, owner);
    return { id: `${spec.namespace ?? ""}/${spec.device}`, observed };
  },
  async read(host, _id, olds) {
    const netem = (await readRoot(host, olds as unknown as NetemSpec))?.netem;
    return netem && asAsked(netem, olds as Partial<Impairment>);
  },
  update: (host, _id, _olds, news) => apply(host, news),
  async delete(host, _id, olds) {
    // A root qdisc that is no longer netem is someone else's now.
    if ((await readRoot(host, olds as unknown as NetemSpec))?.netem)
      await runUnlessGone(host, netemDeleteArgv(olds as unknown as NetemSpec));
    for (const argv of removeOwnerRecordArgvs(recordPath(olds as unknown as NetemSpec), olds.owner as string | undefined))
      await host.run(argv);
  },
  async tagged(_host, source) {
    return ownerRecords(await source.records(), "qdisc").map(({ owner, namespace, names: [device] }) => ({
      owner,
      id: `${namespace ?? ""}/${device}`,
      olds: { namespace, device, owner },
      what: `netem on "${device}"${inNamespaceWords(namespace)}`,
    }));
  },
});
