/**
 * The Lab-edit property test, through the real Pulumi CLI on three throwaway hosts: random sequences of
 * edits (nodes added, removed and renamed; LANs added and removed; members and links added, removed and
 * cabled to another node)
 * to a Lab whose every node is on one LAN spanning the hosts, with `expect: "all-pairs"`. After each
 * edit, the preview replaces no node (LabNode) that stays, and replaces or changes no VXLAN end but in
 * place for a segment the edit touched (a LAN reaching one more or one fewer host: its remotes, and its
 * MTU when it starts or stops spanning hosts); after `up`, every interface that stays is the same one (its
 * ifindex), but on a link given another end (a renamed node's, or cabled to another node: a link's
 * identity names both ends, so it is a new link, made in place of the old one); every other address stays put;
 * `up` passes its all-pairs checks; a second preview is empty. Each run ends with destroy, leaving the
 * hosts as they were.
 *
 * PNT_LAB_EDIT_RUNS (default 2) sequences of PNT_LAB_EDIT_STEPS (default 6) edits; a failure prints the
 * seed and path (PNT_LAB_EDIT_SEED=... PNT_LAB_EDIT_PATH=... replays it).
 */
import { join } from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import fc from "fast-check";
import { hostSnapshot } from "../harness/hostSnapshot";
import { PulumiWorkdir, REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { TestLab } from "../harness/throwawayHosts";
import { changes, projectStack, stopwatch, twoHostConfig } from "../harness/e2e";

const RUNS = Number(process.env.PNT_LAB_EDIT_RUNS ?? 2);
const STEPS = Number(process.env.PNT_LAB_EDIT_STEPS ?? 6);
jest.setTimeout(Math.max(900_000, RUNS * STEPS * 60_000));

const HOSTS = ["a", "b", "c"] as const;

interface Model {
  nodes: { name: string; host: string }[];
  /** Extra LANs (every node is on "core" too), members by node name. */
  lans: { name: string; members: string[] }[];
  links: { id: number; a: string; b: string }[];
  /** Next number for a node, LAN or link name. */
  next: number;
}

const initial: Model = {
  nodes: [
    { name: "n1", host: "a" },
    { name: "n2", host: "b" },
    { name: "n3", host: "a" },
  ],
  lans: [],
  links: [],
  next: 4,
};

/** The Lab's topology: "core" (sorting first, so it carries each node's address for all-pairs) and the rest. */
function topology(model: Model) {
  return {
    nodes: Object.fromEntries(model.nodes.map((n) => [n.name, { host: n.host }])),
    lans: Object.fromEntries([
      ["core", { members: model.nodes.map((n) => `${n.name}:eth0`) }],
      ...model.lans.map((l) => [l.name, { members: l.members.map((m) => `${m}:${l.name}`) }]),
    ]),
    links: model.links.map((l) => ({ endpoints: [`${l.a}:l${l.id}`, `${l.b}:l${l.id}`] })),
    expect: "all-pairs",
  };
}

const pick = <T>(list: T[], index: number): T | undefined => (list.length === 0 ? undefined : list[index % list.length]);

type Edit =
  | { op: "addNode"; host: string }
  | { op: "removeNode" | "renameNode" | "removeLan" | "removeLink"; pick: number }
  | { op: "addLan"; picks: number[] }
  | { op: "addMember" | "removeMember"; lan: number; node: number }
  | { op: "addLink"; a: number; b: number }
  | { op: "recable"; pick: number; node: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant("addNode" as const), host: fc.constantFrom(...HOSTS) }),
  fc.record({
    op: fc.constantFrom("removeNode" as const, "renameNode" as const, "removeLan" as const, "removeLink" as const),
    pick: fc.nat(99),
  }),
  fc.record({ op: fc.constant("addLan" as const), picks: fc.array(fc.nat(99), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constantFrom("addMember" as const, "removeMember" as const), lan: fc.nat(99), node: fc.nat(99) }),
  fc.record({ op: fc.constant("addLink" as const), a: fc.nat(99), b: fc.nat(99) }),
  fc.record({ op: fc.constant("recable" as const), pick: fc.nat(99), node: fc.nat(99) }),
);

interface Applied {
  model: Model;
  what: string;
  /** Segments the edit touched ("core", a LAN's name, a link's "lID"): their cables may change in place. */
  touched: string[];
  /** Links whose identity the edit changed (a renamed node's): a new link, both ends made anew. */
  renewed: string[];
}

/** The model after an edit; undefined when it cannot apply (it is skipped). */
function apply(model: Model, e: Edit): Applied | undefined {
  const applied = change(model, e);
  if (!applied) return undefined;
  const nodesOf = (m: Model) => new Set(m.nodes.map((n) => n.name));
  const gone = [...nodesOf(model)].filter((n) => !nodesOf(applied.model).has(n));
  // A node that goes (or is renamed) leaves every LAN it was on, and its links go with it.
  const lansOf = (node: string) => model.lans.filter((l) => l.members.includes(node)).map((l) => l.name);
  const linksOf = (node: string) => model.links.filter((l) => l.a === node || l.b === node).map((l) => `l${l.id}`);
  const renewed = e.op === "renameNode" ? gone.flatMap(linksOf) : e.op === "recable" ? applied.touched : [];
  return { ...applied, touched: [...applied.touched, ...gone.flatMap(lansOf), ...gone.flatMap(linksOf)], renewed };
}

function change(model: Model, e: Edit): Omit<Applied, "renewed"> | undefined {
  const named = `n${model.next}`;
  const next = model.next + 1;
  const rename = (from: string, to: string) => (name: string) => (name === from ? to : name);
  switch (e.op) {
    case "addNode":
      return {
        model: { ...model, nodes: [...model.nodes, { name: named, host: e.host }], next },
        what: `add node ${named} on ${e.host}`,
        touched: ["core"],
      };
    case "removeNode": {
      const gone = pick(model.nodes, e.pick)!;
      if (model.nodes.length <= 2) return undefined;
      return {
        model: {
          ...model,
          nodes: model.nodes.filter((n) => n !== gone),
          lans: model.lans.map((l) => ({ ...l, members: l.members.filter((m) => m !== gone.name) })).filter((l) => l.members.length > 0),
          links: model.links.filter((l) => l.a !== gone.name && l.b !== gone.name),
        },
        what: `remove node ${gone.name}`,
        touched: ["core"],
      };
    }
    case "renameNode": {
      const node = pick(model.nodes, e.pick)!;
      const to = rename(node.name, named);
      return {
        model: {
          nodes: model.nodes.map((n) => ({ ...n, name: to(n.name) })),
          lans: model.lans.map((l) => ({ ...l, members: l.members.map(to) })),
          links: model.links.map((l) => ({ ...l, a: to(l.a), b: to(l.b) })),
          next,
        },
        what: `rename node ${node.name} to ${named}`,
        touched: ["core"],
      };
    }
    case "addLan": {
      const members = [...new Set(e.picks.map((i) => pick(model.nodes, i)!.name))];
      const name = `x${model.next}`;
      return {
        model: { ...model, lans: [...model.lans, { name, members }], next },
        what: `add LAN ${name} of ${members.join(", ")}`,
        touched: [name],
      };
    }
    case "removeLan": {
      const gone = pick(model.lans, e.pick);
      return (
        gone && { model: { ...model, lans: model.lans.filter((l) => l !== gone) }, what: `remove LAN ${gone.name}`, touched: [gone.name] }
      );
    }
    case "addMember": {
      const lan = pick(model.lans, e.lan);
      const node = pick(model.nodes, e.node)!;
      if (!lan || lan.members.includes(node.name)) return undefined;
      const members = [...lan.members, node.name];
      return {
        model: { ...model, lans: model.lans.map((l) => (l === lan ? { ...l, members } : l)) },
        what: `add ${node.name} to LAN ${lan.name}`,
        touched: [lan.name],
      };
    }
    case "removeMember": {
      const lan = pick(model.lans, e.lan);
      const member = lan && pick(lan.members, e.node);
      if (!lan || !member || lan.members.length === 1) return undefined;
      const members = lan.members.filter((m) => m !== member);
      return {
        model: { ...model, lans: model.lans.map((l) => (l === lan ? { ...l, members } : l)) },
        what: `remove ${member} from LAN ${lan.name}`,
        touched: [lan.name],
      };
    }
    case "addLink": {
      const [a, b] = [pick(model.nodes, e.a)!, pick(model.nodes, e.b)!];
      if (a === b) return undefined;
      const what = `link ${a.name} and ${b.name} (l${model.next})`;
      return {
        model: { ...model, links: [...model.links, { id: model.next, a: a.name, b: b.name }], next },
        what,
        touched: [`l${model.next}`],
      };
    }
    case "recable": {
      // The link's second end goes to another node, same interface name: another link on the first end.
      const link = pick(model.links, e.pick);
      const node = pick(model.nodes, e.node)!;
      if (!link || node.name === link.a || node.name === link.b) return undefined;
      const links = model.links.map((l) => (l === link ? { ...l, b: node.name } : l));
      return {
        model: { ...model, links },
        what: `cable ${link.a}'s l${link.id} to ${node.name} instead of ${link.b}`,
        touched: [`l${link.id}`],
      };
    }
    case "removeLink": {
      const gone = pick(model.links, e.pick);
      return (
        gone && {
          model: { ...model, links: model.links.filter((l) => l !== gone) },
          what: `remove link l${gone.id}`,
          touched: [`l${gone.id}`],
        }
      );
    }
  }
}

let lab: TestLab;
let work: PulumiWorkdir;
let stack: Stack;
let before: Record<string, unknown>[];
const { lines: timings, timed } = stopwatch();
let edits = 0;

beforeAll(async () => {
  requirePulumiCli();
  lab = await TestLab.create(3);
  work = PulumiWorkdir.create("e2e-lab-edits");
  const c = lab.hosts[2];
  ({ stack } = await projectStack(
    work,
    "lab-edits",
    {
      ...twoHostConfig(lab),
      hostC: { value: c.address },
      hostKeyC: { value: c.hostKey },
      topology: { value: JSON.stringify(topology(initial)) },
    },
    join(REPO_ROOT, "test", "e2e", "programs", "lab-edits"),
  ));
  before = lab.hosts.map(hostSnapshot);
});

afterAll(() => {
  console.log(
    `Lab edits: ${RUNS} runs, ${edits} edits applied; wall times of the last run:\n  ${timings.slice(-2 * STEPS - 2).join("\n  ")}`,
  );
  lab?.destroy();
  work?.remove();
});

const WATCHED = new Set(["LabNode", "LabSegment"]);

/** The segment a Lab child belongs to, from its name: "lab/n1:x4/ipv4" → "x4", "lab/core/b" → "core", "lab/n1:l7--n2:l7" → "l7". */
function segmentOf(urn: string): string {
  const first = urn.split("::").pop()!.slice("lab/".length).split("/")[0];
  const ifname = first.includes(":") ? first.split("--")[0].split(":")[1] : first;
  return ifname === "eth0" ? "core" : ifname;
}

/** The nodes and segment parts in the stack now, by URN, with their type's last word. */
async function watched(): Promise<Map<string, string>> {
  const { deployment } = await stack.exportStack();
  return new Map(
    ((deployment.resources ?? []) as { urn: string; type: string }[])
      .map((r) => [r.urn, r.type.split(":").pop()!] as const)
      .filter(([, type]) => WATCHED.has(type)),
  );
}

/** "node:ifname" → the interface's ifindex in the node's namespace: the same one after an edit means the same cable. */
function interfaces(model: Model): Map<string, number> {
  const seen = new Map<string, number>();
  for (const node of model.nodes) {
    const host = lab.hosts[HOSTS.indexOf(node.host as (typeof HOSTS)[number])];
    for (const l of JSON.parse(host.sh(["ip", "-n", node.name, "-j", "link", "show"])) as { ifname: string; ifindex: number }[]) {
      if (l.ifname !== "lo") seen.set(`${node.name}:${l.ifname}`, l.ifindex);
    }
  }
  return seen;
}

/** Node → interface → addresses, for comparing what stays. */
type Addresses = Record<string, Record<string, string[]>>;

interface Made {
  addresses: Addresses;
  interfaces: Map<string, number>;
}

async function applyModel(
  model: Model,
  what: string,
  edited: Pick<Applied, "touched" | "renewed">,
  previous: Made | undefined,
): Promise<Made> {
  await stack.setConfig("topology", { value: JSON.stringify(topology(model)) });
  const existing = await watched();
  const touched: string[] = [];
  await timed(`preview: ${what}`, () =>
    stack.preview({
      onEvent: (event) => {
        const m = event.resourcePreEvent?.metadata;
        const type = m && existing.get(m.urn);
        if (!m || !type || m.op === "same" || m.op === "delete") return;
        // A node that stays is edited in place, whatever the edit does to its cables (checked below, on the hosts).
        if (type === "LabNode" && m.op === "update") return;
        // A segment the edit touched may change its tunnel in place: a LAN that reaches one more or one fewer
        // host changes its VXLAN ends' remotes, and its MTU (VXLAN's overhead) when it starts or stops spanning hosts.
        if (m.op === "update" && edited.touched.includes(segmentOf(m.urn))) return;
        // A renamed node's links are new links (their identity names both ends): made anew, new subnet.
        if (edited.renewed.includes(segmentOf(m.urn))) return;
        touched.push(`${m.op} ${type} ${m.urn.split("::").pop()}`);
      },
    }),
  );
  expect([what, touched]).toEqual([what, []]);
  const up = await timed(`up: ${what}`, () => stack.up());
  const made = { addresses: up.outputs.addresses.value as Addresses, interfaces: interfaces(model) };
  for (const [node, ifnames] of Object.entries(previous?.addresses ?? {})) {
    for (const [ifname, list] of Object.entries(ifnames)) {
      if (made.addresses[node]?.[ifname] && !edited.renewed.includes(ifname))
        expect([what, node, ifname, made.addresses[node][ifname]]).toEqual([what, node, ifname, list]);
    }
  }
  // No cable that stays is made again: each interface there before and after, on a segment the edit did not renew, is the same one.
  for (const [endpoint, ifindex] of previous?.interfaces ?? []) {
    const now = made.interfaces.get(endpoint);
    if (now !== undefined && !edited.renewed.includes(endpoint.split(":")[1]))
      expect([what, endpoint, now]).toEqual([what, endpoint, ifindex]);
  }
  expect([what, changes((await stack.preview()).changeSummary)]).toEqual([what, {}]);
  return made;
}

test("edits to a Lab over three hosts change nothing they do not touch, and all pairs reach each other after each", async () => {
  const seed = process.env.PNT_LAB_EDIT_SEED ? Number(process.env.PNT_LAB_EDIT_SEED) : undefined;
  await fc.assert(
    fc.asyncProperty(fc.array(edit, { minLength: STEPS, maxLength: STEPS }), async (sequence) => {
      try {
        let model = initial;
        let made = await applyModel(model, "the first lab", { touched: [], renewed: [] }, undefined);
        for (const e of sequence) {
          const applied = apply(model, e);
          if (!applied) continue;
          model = applied.model;
          made = await applyModel(model, applied.what, applied, made);
          edits++;
        }
      } finally {
        await timed("destroy", () => stack.destroy());
      }
      expect(lab.hosts.map(hostSnapshot)).toEqual(before);
    }),
    // Each run takes minutes on real hosts: no shrinking, the seed and path replay a failure.
    { numRuns: RUNS, seed, path: process.env.PNT_LAB_EDIT_PATH, verbose: true, endOnFailure: true },
  );
});
