/**
 * What a lab may change on a host, in a form that compares equal when nothing was left behind:
 * namespaces, links, addresses, routes, iptables rules and non-default policies, forwarding, and the
 * files of services (their pid files, logs and owner records).
 * Kernel noise (counters, IPv6 DAD progress, an empty table iptables-nft created) is left out.
 */
import { SERVICES_ROOT } from "../../provider/kinds/service";
import type { TestHost } from "./throwawayHosts";

export function hostSnapshot(host: TestHost): Record<string, unknown> {
  const json = (argv: string[]) => JSON.parse(host.sh(["ip", "-j", ...argv]) || "[]");
  const links = json(["-d", "link"]).map((l: Record<string, unknown>) => ({
    name: l.ifname,
    kind: (l.linkinfo as { info_kind?: string } | undefined)?.info_kind,
    flags: l.flags,
    mtu: l.mtu,
    master: l.master,
  }));
  const addresses = json(["addr"]).flatMap((l: { ifname: string; addr_info: { local: string; prefixlen: number; scope: string }[] }) =>
    l.addr_info.filter((a) => a.scope !== "link").map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`),
  );
  const routes = json(["route", "show", "table", "all"])
    .filter((r: { dst: string }) => !r.dst.startsWith("fe80"))
    .map(
      (r: Record<string, unknown>) => `${r.table ?? "main"} ${r.type ?? ""} ${r.dst} ${r.gateway ?? ""} ${r.dev ?? ""} ${r.metric ?? ""}`,
    );
  const firewall = ["iptables-save", "ip6tables-save"].flatMap((save) =>
    host
      .sh([save])
      .split("\n")
      .filter((line) => line.startsWith("-A") || (line.startsWith(":") && !/ (ACCEPT|-) /.test(line)))
      .map((line) => line.replace(/ \[\d+:\d+\]$/, "")),
  );
  return {
    namespaces: host.sh(["ip", "netns", "list"]),
    links,
    addresses,
    routes,
    firewall,
    forwarding: host.sh(["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]),
    serviceFiles: host.sh(["sh", "-c", `find ${SERVICES_ROOT} /run/pulumi-netns/owner/service -type f 2>/dev/null; true`]),
  };
}
