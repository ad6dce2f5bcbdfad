/**
 * A lab plan as pictures: Graphviz DOT (render with `dot -Tsvg`) and Mermaid (renders in GitHub
 * Markdown). Hosts are boxes around their nodes, LANs are ellipses, links and LAN memberships are edges
 * labelled with interface and address; what crosses hosts is dashed and shows its VNI; an impaired link
 * shows its impairment; a cable that is down is dotted and says so.
 */
import type { LabPlan, MemberPlan, SegmentPlan } from "./plan";

type Drawable = Pick<LabPlan, "hosts" | "nodes" | "links" | "lans">;

const quote = (text: string) => `"${text.replace(/["\\]/g, "\\$&")}"`;
/** DOT label lines; "\n" inside a quoted DOT string is a centred line break. */
const lines = (...parts: (string | undefined)[]) => quote(parts.filter((p) => p).join("\n")).replace(/\n/g, "\\n");
/** "10.1.0.5/30" → ".5", "2001:db8::2/64" → "::2": the edge label already shows the subnet. */
const hostPart = (address: string) => {
  const bare = address.split("/")[0];
  return bare.includes(":") ? `::${bare.split(":").pop()}` : `.${bare.split(".").pop()}`;
};
const end = (m: MemberPlan) => [m.ifname, ...m.addresses.map(hostPart)].join(" ");
const crossing = (s: SegmentPlan) => (s.vxlan ? `vni ${s.vxlan.vni}` : undefined);
/** "20 ms ±2 ms, 1% loss, 10000 kbit/s": the impairment's non-zero settings, as the link declares them. */
const impaired = (s: SegmentPlan) => {
  const i = s.impairment;
  if (!i) return undefined;
  const parts = [
    i.delayMs > 0 ? `${i.delayMs} ms${i.jitterMs > 0 ? ` ±${i.jitterMs} ms` : ""}` : undefined,
    i.lossPercent > 0 ? `${i.lossPercent}% loss` : undefined,
    i.corruptPercent > 0 ? `${i.corruptPercent}% corrupt` : undefined,
    i.duplicatePercent > 0 ? `${i.duplicatePercent}% duplicate` : undefined,
    i.reorderPercent > 0 ? `${i.reorderPercent}% reorder` : undefined,
    i.rateKbit > 0 ? `${i.rateKbit} kbit/s` : undefined,
  ].filter((p) => p);
  return parts.length > 0 ? parts.join(", ") : undefined;
};
const lanId = (s: SegmentPlan) => `lan ${s.id}`;
const downWord = (down: boolean | undefined) => (down ? "down" : undefined);
const dotted = (down: boolean | undefined) => (down ? ", style=dotted" : "");
/** A LAN on one host is drawn inside that host's box; one across hosts between the boxes. */
const lansWithin = (plan: Drawable, host: string | undefined) =>
  plan.lans.filter((s) => (s.bridges.length === 1 ? s.bridges[0].host : undefined) === host);

const dotLan = (s: SegmentPlan) =>
  `  ${quote(lanId(s))} [shape=ellipse, style=${s.vxlan ? "dashed" : "solid"}, label=${lines(s.id, ...s.subnets, crossing(s))}];`;

export function topologyDot(plan: Drawable): string {
  const out = [
    "graph lab {",
    "  graph [rankdir=LR, fontname=Helvetica, nodesep=0.6, ranksep=1.6];",
    "  node [shape=box, style=rounded, fontname=Helvetica];",
    "  edge [fontname=Helvetica, fontsize=9, labeldistance=2.5, labelfontcolor=gray30];",
  ];
  for (const [host, { underlay }] of Object.entries(plan.hosts)) {
    const nodes = plan.nodes.filter((n) => n.host === host);
    if (nodes.length === 0) continue;
    out.push(`  subgraph ${quote(`cluster_${host}`)} {`, `    label=${lines(host, underlay)};`);
    for (const n of nodes)
      out.push(
        `    ${quote(n.name)} [label=${lines(n.name, n.router ? "router" : undefined)}${n.router ? ', style="rounded,bold"' : ""}];`,
      );
    for (const s of lansWithin(plan, host)) out.push(`  ${dotLan(s)}`);
    out.push("  }");
  }
  for (const s of lansWithin(plan, undefined)) out.push(dotLan(s));
  for (const s of plan.lans) {
    for (const m of s.members)
      out.push(`  ${quote(m.node)} -- ${quote(lanId(s))} [label=${lines(end(m), downWord(m.down))}${dotted(m.down)}];`);
  }
  for (const s of plan.links) {
    const [a, b] = s.members;
    out.push(
      `  ${quote(a.node)} -- ${quote(b.node)} [label=${lines(...s.subnets, crossing(s), impaired(s), downWord(a.down))}, ` +
        `taillabel=${lines(end(a))}, headlabel=${lines(end(b))}${a.down ? dotted(true) : s.vxlan ? ", style=dashed" : ""}];`,
    );
  }
  out.push("}");
  return `${out.join("\n")}\n`;
}

/** Mermaid ids allow few characters: every other one becomes "_" and its hex code, so ids stay distinct. */
const mermaidId = (kind: string, name: string) => `${kind}_${name.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`;
const mermaidText = (...parts: (string | undefined)[]) => `"${parts.filter((p) => p).join(" · ")}"`;
const mermaidEnd = (m: MemberPlan) => [m.ifname, ...m.addresses].join(" ");

const mermaidLan = (s: SegmentPlan) => `  ${mermaidId("lan", s.id)}([${mermaidText(s.id, ...s.subnets, crossing(s))}])`;

export function topologyMermaid(plan: Drawable): string {
  const out = ["flowchart LR"];
  for (const [host, { underlay }] of Object.entries(plan.hosts)) {
    const nodes = plan.nodes.filter((n) => n.host === host);
    if (nodes.length === 0) continue;
    out.push(`  subgraph ${mermaidId("host", host)} [${mermaidText(host, underlay)}]`);
    for (const n of nodes) out.push(`    ${mermaidId("node", n.name)}[${mermaidText(n.name, n.router ? "router" : undefined)}]`);
    for (const s of lansWithin(plan, host)) out.push(`  ${mermaidLan(s)}`);
    out.push("  end");
  }
  for (const s of lansWithin(plan, undefined)) out.push(mermaidLan(s));
  for (const s of plan.lans) {
    for (const m of s.members)
      out.push(
        `  ${mermaidId("node", m.node)} ${s.vxlan || m.down ? "-.-" : "---"}|${mermaidText(mermaidEnd(m), downWord(m.down))}| ` +
          `${mermaidId("lan", s.id)}`,
      );
  }
  for (const s of plan.links) {
    const [a, b] = s.members;
    out.push(
      `  ${mermaidId("node", a.node)} ` +
        `${s.vxlan || a.down ? "-.-" : "---"}|${mermaidText(mermaidEnd(a), crossing(s), impaired(s), downWord(a.down), mermaidEnd(b))}| ` +
        `${mermaidId("node", b.node)}`,
    );
  }
  return `${out.join("\n")}\n`;
}
