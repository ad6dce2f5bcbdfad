import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { hostName, port } from "./fields";
import { isRecord } from "./validate";

/** Fields that carry secrets: marked secret in the schema, never printed (the SDK makes the whole connection secret). */
export const SECRET_FIELDS = ["privateKey", "passphrase", "password"] as const;

/** A provider's secret properties: the credentials, and the jump host as a whole (it carries its own). */
export const PROVIDER_SECRETS = [...SECRET_FIELDS, "proxy"] as const;

const endpoint = {
  host: hostName.describe("Host name or IP address of the SSH server."),
  port: port.default(22).describe("SSH port."),
  user: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, { message: "not a valid user name" })
    .default("root")
    .describe("User to log in as."),
  privateKey: z.string().optional().describe("PEM/OpenSSH private key (secret)."),
  passphrase: z.string().optional().describe("Passphrase of the private key (secret)."),
  password: z.string().optional().describe("Password (secret)."),
  agent: z.string().optional().describe("Path of an ssh-agent socket, e.g. the value of SSH_AUTH_SOCK."),
  hostKey: z
    .string()
    .optional()
    .describe(
      'Pinned host key: a public key line ("ssh-ed25519 AAAA...") or a fingerprint ("SHA256:..."). ' +
        "Without it the key must be in knownHostsFile.",
    ),
  knownHostsFile: z.string().optional().describe("known_hosts file used when hostKey is not set; default ~/.ssh/known_hosts."),
  insecureSkipHostKeyCheck: z
    .boolean()
    .default(false)
    .describe("Accept any host key. Insecure: anyone on the path can impersonate the host."),
};

export const jumpHost = z.object(endpoint);

export const connection = z
  .object({
    ...endpoint,
    sudo: z.boolean().default(false).describe("Run commands through `sudo -n` (for a non-root user)."),
    proxy: jumpHost.optional().describe("A jump host to reach the target through."),
    maxSessions: z
      .number()
      .int()
      .min(1)
      .max(8)
      .default(2)
      .describe("Remote shells opened at most on the one shared connection to this host."),
    commandTimeout: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe("Seconds one command may take before it is abandoned and its shell closed."),
  })
  .describe("How to reach the host over SSH. Credentials are stored as secrets.");

export type Connection = z.infer<typeof connection>;
export type JumpHost = z.infer<typeof jumpHost>;

/**
 * The identity of a target machine: a change here replaces resources; a change of credentials does not.
 * Another port or jump host often means another machine (VMs behind one address), so they count.
 */
export function targetIdentity(c: Pick<Connection, "host" | "port" | "proxy">): string {
  return JSON.stringify([c.host, c.port ?? 22, c.proxy?.host, c.proxy?.port ?? 22]);
}

export function targetLabel(c: Pick<Connection, "user" | "host" | "port">): string {
  return `${c.user}@${c.host}:${c.port}`;
}

/** Each field a connection or jump host gets when it is left out (host is required, so any will do). */
const DEFAULTS = { target: connection.parse({ host: "x" }), proxy: jumpHost.parse({ host: "x" }) };

function withoutDefaults(value: unknown, defaults: Record<string, unknown>): unknown {
  if (!isRecord(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, field]) => key === "host" || field !== defaults[key])
      .map(([key, field]) => [key, key === "proxy" ? withoutDefaults(field, DEFAULTS.proxy) : field]),
  );
}

/**
 * A connection as state keeps it: without the fields that equal their defaults. It is stored twice per
 * resource, encrypted, and rewritten with every checkpoint; parsing it again gives the same connection.
 */
export function compactConnection(value: unknown): unknown {
  return withoutDefaults(value, DEFAULTS.target);
}

/** Two connections as the provider would use them: defaults applied, whether spelt out or left unset. */
export function sameConnection(a: unknown, b: unknown): boolean {
  const canonical = (value: unknown) => {
    const parsed = connection.safeParse(value);
    return parsed.success ? compactConnection(parsed.data) : value;
  };
  return isDeepStrictEqual(canonical(a), canonical(b));
}
