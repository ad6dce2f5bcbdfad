import { isIP } from "node:net";
import { z } from "zod";
import { interfaceName, ipAddress, namespaceName } from "../fields";
import { ownerComment, Rule } from "../iptables";
import { acceptForward, defineRuleKind } from "../ruleKind";

export interface Endpoint {
  address: string;
  port?: number;
}

/** "10.0.0.2:80", "10.0.0.2", "[2001:db8::2]:80" or "[2001:db8::2]". */
export function parseEndpoint(value: string): Endpoint | undefined {
  const match = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(value) ?? /^([0-9.]+)(?::(\d{1,5}))?$/.exec(value);
  if (!match || isIP(match[1]) === 0) return undefined;
  const port = match[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { address: match[1], port };
}

export interface PortForwardSpec {
  protocol: "tcp" | "udp";
  port: number;
  to: string;
  inInterface?: string;
  destination?: string;
  acceptForward: boolean;
  fromHost: boolean;
}

/**
 * nat PREROUTING: -d DST (or any local address) [-i IN] -p P --dport PORT → DNAT to TO;
 *   traffic merely routed through the host to port PORT elsewhere is left alone
 * nat OUTPUT (fromHost, no inInterface): the same for connections the host itself opens to one of
 *   its own addresses (local traffic skips PREROUTING); loopback is left alone.
 * filter FORWARD (acceptForward): the forwarded flow and its replies, inserted first.
 */
export function portForwardRules(spec: PortForwardSpec, id: string): Rule[] {
  const to = parseEndpoint(spec.to)!;
  const family = isIP(to.address) as 4 | 6;
  const toPort = to.port ?? spec.port;
  const toText = family === 6 ? `[${to.address}]:${toPort}` : `${to.address}:${toPort}`;
  const proto = ["-p", spec.protocol, "-m", spec.protocol];
  const dnat = [...ownerComment(id), "-j", "DNAT", "--to-destination", toText];
  const toHost = spec.destination ? ["-d", spec.destination] : ["-m", "addrtype", "--dst-type", "LOCAL"];
  const rules: Rule[] = [
    {
      family,
      table: "nat",
      chain: "PREROUTING",
      spec: [
        ...toHost,
        ...(spec.inInterface ? ["-i", spec.inInterface] : []),
        ...proto,
        "--dport",
        String(spec.port),
        ...dnat,
      ],
    },
  ];
  if (spec.fromHost && !spec.inInterface) {
    const loopback = spec.destination ? [] : ["!", "-d", family === 6 ? "::1/128" : "127.0.0.0/8"];
    rules.push({ family, table: "nat", chain: "OUTPUT", spec: [...loopback, ...toHost, ...proto, "--dport", String(spec.port), ...dnat] });
  }
  if (spec.acceptForward) {
    rules.push(
      {
        family,
        table: "filter",
        chain: "FORWARD",
        first: true,
        spec: ["-d", to.address, ...proto, "--dport", String(toPort), "-m", "conntrack", "--ctstate", "DNAT", ...ownerComment(id), "-j", "ACCEPT"],
      },
      {
        family,
        table: "filter",
        chain: "FORWARD",
        first: true,
        spec: [
          "-s", to.address, ...proto, "--sport", String(toPort),
          "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...ownerComment(id), "-j", "ACCEPT",
        ],
      },
    );
  }
  return rules;
}

export const portForwardKind = defineRuleKind({
  name: "PortForward",
  description: "Destination NAT from a host port to an address and port, e.g. into a namespace (iptables DNAT).",
  shape: {
    protocol: z.enum(["tcp", "udp"]).describe("tcp or udp; iptables needs it to match a port."),
    port: z.number().int().min(1).max(65535).describe("Port on the host."),
    to: z
      .string()
      .refine((s) => parseEndpoint(s) !== undefined, { message: 'must be "ADDRESS:PORT", "ADDRESS" or "[IPv6]:PORT"', abort: true })
      .describe('Where to send it: "192.168.15.2:80" (the port defaults to `port`).'),
    inInterface: interfaceName.optional().describe("Only forward traffic arriving on this interface."),
    destination: ipAddress.optional().describe("Only forward traffic addressed to this host address."),
    namespace: namespaceName.optional().describe("Namespace whose firewall gets the rules; the host's own when unset."),
    acceptForward,
    fromHost: z
      .boolean()
      .default(true)
      .describe("Also forward connections the host opens to its own addresses (not loopback); ignored with inInterface."),
  },
  refine(spec, ctx) {
    const family = isIP(parseEndpoint(spec.to)!.address);
    if (spec.destination && isIP(spec.destination) !== family) {
      ctx.addIssue({ code: "custom", path: ["destination"], message: "destination and `to` must be the same IP family" });
    }
  },
  idPrefix: "pf",
  rules: portForwardRules,
});
