import { isIP } from "node:net";
import { z } from "zod";
import { canonicalAddress, interfaceName, ipAddress, namespaceName, networkCidr, parseCidr } from "../fields";
import { Argv, inNamespace } from "../host";
import { FORWARD_CHAIN, optionValue, Rule, ruleAddress, ruleNetwork } from "../iptables";
import { Props, splitNamespace } from "../kind";
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
  hairpinNetwork?: string;
  namespace?: string;
}

/**
 * nat PREROUTING: [-d DST | any local address] [-i IN] -p P --dport PORT → DNAT to TO;
 *   traffic merely routed through the host to port PORT elsewhere is left alone
 * nat OUTPUT (fromHost, no inInterface): the same for connections the host itself opens to one of
 *   its own addresses (local traffic skips PREROUTING); loopback is left alone.
 * nat POSTROUTING (hairpinNetwork): DNATed connections from that network to TO are masqueraded, so
 *   that TO answers through the host instead of straight to a client on its own segment (which would
 *   drop an answer from an address it never spoke to). Other clients keep their source address.
 * filter PULUMI-NETNS-FWD (acceptForward): the forwarded flow and its replies.
 */
export function portForwardRules(spec: PortForwardSpec, mark: string[]): Rule[] {
  const to = parseEndpoint(spec.to)!;
  const family = isIP(to.address) as 4 | 6;
  const toPort = String(to.port ?? spec.port);
  const target = ruleAddress(to.address);
  const toText = family === 6 ? `[${canonicalAddress(to.address)}]:${toPort}` : `${to.address}:${toPort}`;
  const dnat = [...mark, "-j", "DNAT", "--to-destination", toText];
  const toHost = spec.destination ? ["-d", ruleAddress(spec.destination)] : [];
  // iptables -S prints -s/-d/-i/-o and -p first, then the matches in the order given.
  const local = spec.destination ? [] : ["-m", "addrtype", "--dst-type", "LOCAL"];
  const hostPort = ["-m", spec.protocol, "--dport", String(spec.port)];
  const rules: Rule[] = [
    {
      family,
      table: "nat",
      chain: "PREROUTING",
      spec: [...toHost, ...(spec.inInterface ? ["-i", spec.inInterface] : []), "-p", spec.protocol, ...local, ...hostPort, ...dnat],
    },
  ];
  if (spec.fromHost && !spec.inInterface) {
    const loopback = spec.destination ? [] : ["!", "-d", family === 6 ? "::1/128" : "127.0.0.0/8"];
    rules.push({
      family,
      table: "nat",
      chain: "OUTPUT",
      spec: [...loopback, ...toHost, "-p", spec.protocol, ...local, ...hostPort, ...dnat],
    });
  }
  const toFlow = ["-d", target, "-p", spec.protocol, "-m", spec.protocol, "--dport", toPort];
  if (spec.hairpinNetwork) {
    rules.push({
      family,
      table: "nat",
      chain: "POSTROUTING",
      spec: ["-s", ruleNetwork(spec.hairpinNetwork), ...toFlow, "-m", "conntrack", "--ctstate", "DNAT", ...mark, "-j", "MASQUERADE"],
    });
  }
  if (spec.acceptForward) {
    rules.push(
      { family, table: "filter", chain: FORWARD_CHAIN, spec: [...toFlow, "-m", "conntrack", "--ctstate", "DNAT", ...mark, "-j", "ACCEPT"] },
      {
        family,
        table: "filter",
        chain: FORWARD_CHAIN,
        spec: [
          "-s",
          target,
          "-p",
          spec.protocol,
          "-m",
          spec.protocol,
          "--sport",
          toPort,
          "-m",
          "conntrack",
          "--ctstate",
          "RELATED,ESTABLISHED",
          ...mark,
          "-j",
          "ACCEPT",
        ],
      },
    );
  }
  return rules;
}

/** An import id [NAMESPACE/]PROTOCOL/PORT, e.g. "tcp/80" or "red/udp/53". */
export function portForwardIdentity(id: string): Props | undefined {
  const parts: { namespace?: string; rest: string } | undefined = id.split("/").length === 3 ? splitNamespace(id) : { rest: id };
  const match = parts && /^(tcp|udp)\/(\d{1,5})$/.exec(parts.rest);
  return match ? { namespace: parts!.namespace, protocol: match[1], port: Number(match[2]) } : undefined;
}

/**
 * What the DNAT rules in PREROUTING for the identity's port may be made from: their own matches, with and
 * without the accepts and the host's own connections (OUTPUT), with each hairpin network a MASQUERADE of
 * DNATed flows names and with none; the defaults first.
 */
export function portForwardCandidates(identity: { protocol?: string; port?: number }, found: Rule[]) {
  const hairpins = found
    .filter((rule) => rule.table === "nat" && rule.chain === "POSTROUTING" && optionValue(rule, "--ctstate") === "DNAT")
    .flatMap((rule) => optionValue(rule, "-s") ?? []);
  return found
    .filter((rule) => rule.table === "nat" && rule.chain === "PREROUTING" && optionValue(rule, "-j") === "DNAT")
    .flatMap((from) => {
      const protocol = optionValue(from, "-p");
      const port = Number(optionValue(from, "--dport"));
      const to = optionValue(from, "--to-destination");
      if ((protocol !== "tcp" && protocol !== "udp") || !(port >= 1 && port <= 65535) || !to || !parseEndpoint(to)) return [];
      if (identity.protocol !== undefined && (protocol !== identity.protocol || port !== identity.port)) return [];
      const destination = optionValue(from, "-d")?.replace(/\/(32|128)$/, "");
      const inInterface = optionValue(from, "-i");
      const matches = { protocol, port, to, ...(destination ? { destination } : {}), ...(inInterface ? { inInterface } : {}) };
      return [true, false].flatMap((acceptForward) =>
        [true, false].flatMap((fromHost) =>
          [...hairpins, undefined].map((hairpinNetwork) => ({
            spec: { ...matches, acceptForward, fromHost, ...(hairpinNetwork ? { hairpinNetwork } : {}) },
            from,
          })),
        ),
      );
    });
}

/**
 * UDP flows to PORT that conntrack already knows keep their old translation while packets keep coming
 * (a client that sent before the rule existed is never DNATed), so every change flushes them, as CNI's
 * portmap does. TCP connections are left alone: new ones are translated anyway.
 */
export function portForwardConntrackFlush(spec: PortForwardSpec): Argv | undefined {
  if (spec.protocol !== "udp") return undefined;
  const family = isIP(parseEndpoint(spec.to)!.address) === 6 ? ["-f", "ipv6"] : [];
  const destination = spec.destination ? ["--orig-dst", spec.destination] : [];
  return inNamespace(spec.namespace, ["conntrack", "-D", ...family, "-p", "udp", ...destination, "--orig-port-dst", String(spec.port)]);
}

/** 127.0.0.0/8 and ::1 need route_localnet to be DNATed, which this provider does not manage. */
const isLoopback = (address: string) => (isIP(address) === 4 ? address.startsWith("127.") : canonicalAddress(address) === "::1");

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
    destination: ipAddress
      .refine((s) => !isLoopback(s), {
        message: "a loopback address (127.0.0.0/8, ::1) cannot be forwarded without route_localnet, which PortForward does not set",
      })
      .optional()
      .describe("Only forward traffic addressed to this host address (not loopback)."),
    namespace: namespaceName.optional().describe("Namespace whose firewall gets the rules; the host's own when unset."),
    acceptForward,
    fromHost: z
      .boolean()
      .default(true)
      .describe("Also forward connections the host opens to its own addresses (not loopback); ignored with inInterface."),
    hairpinNetwork: networkCidr
      .refine((s) => parseCidr(s)!.prefix > 0, { message: "a /0 hairpin network would hide every client's address" })
      .optional()
      .describe(
        "The network `to` is on, e.g. the bridge's 192.168.15.0/24: its members reaching the forwarded port through a host " +
          "address are masqueraded, so that `to` answers through the host. Other clients keep their source address.",
      ),
  },
  refine(spec, ctx) {
    const family = isIP(parseEndpoint(spec.to)!.address);
    if (spec.destination && isIP(spec.destination) !== family) {
      ctx.addIssue({ code: "custom", path: ["destination"], message: "destination and `to` must be the same IP family" });
    }
    if (spec.hairpinNetwork && parseCidr(spec.hairpinNetwork)!.family !== family) {
      ctx.addIssue({ code: "custom", path: ["hairpinNetwork"], message: "hairpinNetwork and `to` must be the same IP family" });
    }
  },
  idPrefix: "pf",
  rules: portForwardRules,
  handMadeForm: "[NAMESPACE/]PROTOCOL/PORT",
  identifyHandMade: portForwardIdentity,
  candidates: portForwardCandidates,
  conntrackFlush: portForwardConntrackFlush,
});
