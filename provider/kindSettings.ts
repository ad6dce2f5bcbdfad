/**
 * What a resource kind and the Lab's planner (sdk/lab) both need: the settings a Lab passes on to its
 * Netem, Service and Check children, and VXLAN's overhead. Zod and fields only, so that the planner
 * imports no kind module (nor anything that reaches a host).
 */
import { isIP } from "node:net";
import { z } from "zod";
import { ipAddress, port } from "./fields";

/** Outer IP, UDP and VXLAN headers plus the inner Ethernet header (kernel `VXLAN_HEADROOM`, `VXLAN6_HEADROOM`). */
export const VXLAN_OVERHEAD = { 4: 50, 6: 70 } as const;
/** IANA's port; the kernel's own default is Linux's pre-standard 8472. */
export const VXLAN_PORT = 4789;

/** Inner MTU that fits the underlay (of `underlayAddress`'s family): larger frames would be dropped without a word. */
export const defaultVxlanMtu = (underlayMtu: number, underlayAddress: string) =>
  underlayMtu - VXLAN_OVERHEAD[isIP(underlayAddress) === 6 ? 6 : 4];

/** The most packets netem may hold (the kernel keeps the limit in 32 bits). */
export const NETEM_MAX_LIMIT = 4294967295;

const percentage = (what: string) => z.number().min(0).max(100).default(0).describe(`${what}, in percent (0 to 100).`);
const milliseconds = (what: string) => z.number().min(0).max(60000).default(0).describe(`${what}, in milliseconds (0 to 60000).`);

/** Netem's settings without the interface they are on: a Netem's, and a Lab link's `impairment`. */
export const impairmentShape = {
  delayMs: milliseconds("Added delay"),
  jitterMs: milliseconds("Random variation of the delay (needs `delayMs`; jitter without a rate reorders packets)"),
  lossPercent: percentage("Packets dropped at random"),
  corruptPercent: percentage("Packets with a flipped bit"),
  duplicatePercent: percentage("Packets sent twice"),
  reorderPercent: percentage("Packets sent at once, ahead of the delayed others (needs `delayMs`)"),
  rateKbit: z
    .number()
    .int()
    .min(0)
    .max(1_000_000_000)
    .default(0)
    .describe("Rate limit in kbit/s (1000 bits), e.g. 10000 for 10 Mbit/s; 0 for none."),
  limit: z
    .number()
    .int()
    .min(1)
    .max(NETEM_MAX_LIMIT)
    .optional()
    .describe(
      "Packets netem may hold. When unset, enough for the rate (or 10 Gbit/s) × (delay + jitter) in full-size frames, twice over, at " +
        "least tc's 1000.",
    ),
};

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: "an environment variable name is letters, digits and _ (not first)" });
const noNul = z.string().refine((s) => !s.includes("\0"), { message: "may not contain a NUL byte" });

const readiness = z
  .object({
    tcpPort: port.optional().describe("Ready once something listens on this TCP port in the namespace."),
    command: z.array(noNul).min(1).optional().describe("Ready once this command (argv, run in the namespace) exits 0."),
    timeoutSeconds: z.number().int().min(1).max(600).default(30).describe("How long create waits for readiness before it fails."),
  })
  .refine((r) => (r.tcpPort === undefined) !== (r.command === undefined), { message: "set exactly one of tcpPort and command" })
  .describe("When the service counts as started: create (and so every resource that depends on it) waits for it.");

/** A Service's settings without its name or where it runs: a Service's, and a Lab node's `services`. */
export const serviceSettingsShape = {
  command: z
    .array(noNul)
    .min(1)
    // env would read a first word with "=" as one more variable.
    .refine((argv) => argv.length === 0 || (!argv[0].startsWith("-") && !argv[0].includes("=")), {
      message: "the command's first word may not start with '-' or hold '='",
    })
    .describe("The command as argv (never parsed by a shell unless `shell` is set)."),
  shell: z.boolean().default(false).describe("Run `command` (its words joined by spaces) through `sh -c`."),
  environment: z.record(envName, noNul).optional().describe("Environment variables added for the command."),
  workingDirectory: z
    .string()
    .regex(/^\/[^\0\n]*$/, { message: "must be an absolute path" })
    .optional()
    .describe("Directory the command starts in; / when unset."),
  user: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, { message: "not a valid user name" })
    .optional()
    .describe("Run as this user (and its group and groups); root when unset."),
  restart: z
    .enum(["never", "on-failure", "always"])
    .default("on-failure")
    .describe("When the supervisor starts the command again after it exits."),
  readiness: readiness.optional(),
  logMaxBytes: z
    .number()
    .int()
    .min(4096)
    .max(1 << 30)
    .default(1 << 20)
    .describe("The log is cut when it grows past this size (the part before it kept as log.1)."),
  stopTimeoutSeconds: z.number().int().min(1).max(300).default(10).describe("Seconds between TERM and KILL when the service stops."),
};

/** One target of a Check, as a Check takes it and a Lab's planner makes it. */
export const checkTarget = z
  .object({
    address: ipAddress.describe("Address to reach."),
    protocol: z.enum(["icmp", "tcp", "udp"]).default("icmp").describe("icmp: ping; tcp: a connect; udp: a datagram that gets a reply."),
    port: port.optional().describe("Port, for tcp and udp."),
    expect: z.enum(["reachable", "unreachable"]).default("reachable").describe("What must be seen."),
    label: z.string().max(200).optional().describe('How messages name the target (e.g. "web:8080"); the address when unset.'),
    maxLossPercent: z
      .number()
      .min(0)
      .max(100)
      .optional()
      .describe("Reachable means at most this share of attempts lost (default: any but all)."),
    maxRttMs: z
      .number()
      .positive()
      .optional()
      .describe("Reachable means a mean round trip of at most this; icmp only (tcp and udp have no round trip measured)."),
  })
  .refine((t) => (t.protocol === "icmp") === (t.port === undefined), {
    message: "tcp and udp need a port; icmp takes none",
    path: ["port"],
  });

export type CheckTarget = z.infer<typeof checkTarget>;

/** The key of a target in a Check's `observed`: protocol, address and port. */
export const targetKey = (t: Pick<CheckTarget, "protocol" | "address" | "port">) =>
  `${t.protocol} ${t.address.includes(":") && t.port ? `[${t.address}]` : t.address}${t.port ? `:${t.port}` : ""}`;
