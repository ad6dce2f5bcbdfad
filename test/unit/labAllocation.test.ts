/**
 * The Lab's allocation: random sequences of edits (segments and members added and removed, links named
 * either way round) in pools small enough that hashes meet often; after every edit each subnet, address
 * and VNI that was there before is where it was. And the LabAllocation provider: check keeps its olds.
 */
import fc from "fast-check";
import { allocateLab, LabAllocations, LabDemand } from "../../provider/lab/allocation";
import { provider } from "../../provider";

/** 16 LAN subnets, 16 link subnets, 16 VNIs, LANs of up to 6 host addresses: collisions on every few seats. */
const SMALL_POOLS: LabDemand["pools"] = {
  lan: { ipv4: "172.16.0.0/25", prefix: 29 },
  p2p: { ipv4: "10.1.0.0/26", prefix: 30 },
  vni: { from: 100, to: 115 },
};

const LANS = ["a", "b", "c", "d", "e", "f", "g", "h"];
const NODES = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"];

/** A lab as the allocator sees it: LAN → members, links as [end, end] in the order declared, what spans hosts. */
interface Shape {
  lans: Record<string, string[]>;
  links: [string, string][];
  spanning: string[];
}

const linkId = ([x, y]: [string, string]) => [x, y].sort().join("--");

function demandOf(shape: Shape): LabDemand {
  const segments: LabDemand["segments"] = [
    ...Object.entries(shape.lans).map(([id, members]) => ({ kind: "lan" as const, id, members })),
    ...shape.links.map((ends) => ({ kind: "link" as const, id: linkId(ends), members: [...ends] })),
  ];
  return {
    segments: segments.map((s) => (shape.spanning.includes(s.id) ? { ...s, spanning: true as const } : s)),
    pools: SMALL_POOLS,
    salt: "",
  };
}

/** One edit of a lab's shape; endpoints are unique per interface name, as the planner demands. */
const edit = fc.oneof(
  fc.record({ op: fc.constant("addLan" as const), lan: fc.constantFrom(...LANS), node: fc.constantFrom(...NODES) }),
  fc.record({ op: fc.constant("removeLan" as const), lan: fc.constantFrom(...LANS) }),
  fc.record({ op: fc.constant("join" as const), lan: fc.constantFrom(...LANS), node: fc.constantFrom(...NODES) }),
  fc.record({ op: fc.constant("leave" as const), lan: fc.constantFrom(...LANS), index: fc.nat(5) }),
  fc.record({ op: fc.constant("addLink" as const), x: fc.constantFrom(...NODES), y: fc.constantFrom(...NODES), span: fc.boolean() }),
  fc.record({ op: fc.constant("removeLink" as const), index: fc.nat(20) }),
  fc.record({ op: fc.constant("swapLink" as const), index: fc.nat(20) }),
  fc.record({ op: fc.constant("span" as const), lan: fc.constantFrom(...LANS) }),
);
type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;

function apply(shape: Shape, e: Edit): Shape {
  const next: Shape = { lans: { ...shape.lans }, links: [...shape.links], spanning: [...shape.spanning] };
  switch (e.op) {
    case "addLan":
      if (!next.lans[e.lan]) next.lans[e.lan] = [`${e.node}:${e.lan}`];
      break;
    case "removeLan":
      delete next.lans[e.lan];
      break;
    case "join":
      if (next.lans[e.lan] && next.lans[e.lan].length < 6 && !next.lans[e.lan].includes(`${e.node}:${e.lan}`)) {
        next.lans[e.lan] = [...next.lans[e.lan], `${e.node}:${e.lan}`];
      }
      break;
    case "leave":
      if (next.lans[e.lan]?.length > 1) next.lans[e.lan] = next.lans[e.lan].filter((_, i) => i !== e.index % next.lans[e.lan].length);
      break;
    case "addLink": {
      const ends: [string, string] = [`${e.x}:l${e.y}`, `${e.y}:l${e.x}`];
      if (e.x !== e.y && next.links.length < 14 && !next.links.some((l) => linkId(l) === linkId(ends))) {
        next.links.push(ends);
        if (e.span) next.spanning.push(linkId(ends));
      }
      break;
    }
    case "removeLink":
      if (next.links.length > 0) next.links.splice(e.index % next.links.length, 1);
      break;
    case "swapLink":
      if (next.links.length > 0) {
        const i = e.index % next.links.length;
        next.links[i] = [next.links[i][1], next.links[i][0]];
      }
      break;
    case "span":
      if (next.lans[e.lan] && !next.spanning.includes(e.lan)) next.spanning.push(e.lan);
      break;
  }
  return next;
}

/** Keys in both allocations whose values differ. */
function moved(before: LabAllocations, after: LabAllocations): string[] {
  return (["subnets", "addresses", "vnis"] as const).flatMap((part) =>
    Object.keys(before[part])
      .filter((key) => key in after[part] && JSON.stringify(before[part][key]) !== JSON.stringify(after[part][key]))
      .map((key) => `${part} ${key}: ${JSON.stringify(before[part][key])} → ${JSON.stringify(after[part][key])}`),
  );
}

/** Every subnet distinct, every address distinct and inside its segment's subnet. */
function wellFormed(demand: LabDemand, a: LabAllocations): void {
  const subnets = Object.values(a.subnets).flat();
  expect(new Set(subnets).size).toBe(subnets.length);
  for (const s of demand.segments) {
    const addresses = s.members.map((m) => a.addresses[m][0]);
    expect(new Set(addresses).size).toBe(addresses.length);
    const [network] = a.subnets[s.id][0].split("/");
    for (const address of addresses) expect(address.split(".").slice(0, 3)).toEqual(network.split(".").slice(0, 3));
  }
  expect(new Set(Object.values(a.vnis)).size).toBe(Object.keys(a.vnis).length);
}

const RUNS = Number(process.env.PNT_ALLOCATION_RUNS ?? 300);

test("after any edit, every subnet, address and VNI that was there before stays where it was", () => {
  let collisions = 0;
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 30 }), (edits) => {
      let shape: Shape = { lans: {}, links: [], spanning: [] };
      let last = allocateLab(demandOf(shape));
      for (const e of edits) {
        shape = apply(shape, e);
        const demand = demandOf(shape);
        const next = allocateLab(demand, last);
        expect(moved(last, next)).toEqual([]);
        wellFormed(demand, next);
        // Without the kept allocation, the same edit would have moved something: the property has teeth.
        if (moved(last, allocateLab(demand)).length > 0) collisions++;
        last = next;
      }
    }),
    { numRuns: RUNS },
  );
  expect(collisions).toBeGreaterThan(0);
});

test("kept seats: a swapped link keeps its ends; a previous seat taken by an explicit address gives way", () => {
  const link = (ends: [string, string], addresses?: Record<string, string[]>): LabDemand => ({
    segments: [{ kind: "link", id: linkId(ends), members: [...ends], ...(addresses ? { addresses } : {}) }],
    salt: "",
  });
  const first = allocateLab(link(["r:e0", "a:e0"]));
  const [r, a] = [first.addresses["r:e0"][0], first.addresses["a:e0"][0]];
  expect(allocateLab(link(["a:e0", "r:e0"]), first).addresses).toEqual({ "r:e0": [r], "a:e0": [a] });
  // Afresh, the ends trade places: what the kept allocation prevents.
  expect(allocateLab(link(["a:e0", "r:e0"])).addresses).toEqual({ "a:e0": [r], "r:e0": [a] });
  // The user pins a:e0 on r's address: r moves, which is the user's step.
  const pinned = allocateLab(link(["r:e0", "a:e0"], { "a:e0": [r] }), first);
  expect(pinned.addresses["a:e0"]).toEqual([r]);
  expect(pinned.addresses["r:e0"]).not.toEqual([r]);
});

describe("the LabAllocation provider", () => {
  const allocation = provider("LabAllocation");
  const demand: LabDemand = { segments: [{ kind: "lan", id: "office", members: ["a:e0", "b:e0"] }], salt: "" };

  test("check allocates into the inputs, keeping its olds' seats; diff sees a change only when the allocation changes", async () => {
    const fresh = await allocation.check({}, { demand });
    expect(fresh.failures).toBeUndefined();
    expect(fresh.inputs.allocations).toEqual(allocateLab(demand));
    // olds that seated office elsewhere (another stack moved here with `previous`, say) are kept.
    const elsewhere: LabAllocations = { subnets: { office: ["172.16.200.0/24"] }, addresses: { "a:e0": ["172.16.200.9/24"] }, vnis: {} };
    const kept = await allocation.check({ ...fresh.inputs, allocations: elsewhere }, { demand });
    expect((kept.inputs.allocations as LabAllocations).subnets.office).toEqual(["172.16.200.0/24"]);
    expect((kept.inputs.allocations as LabAllocations).addresses["a:e0"]).toEqual(["172.16.200.9/24"]);
    const created = await allocation.create(fresh.inputs);
    expect(created.outs).toEqual({ allocations: fresh.inputs.allocations });
    expect(await allocation.diff("allocations", created.outs, fresh.inputs)).toMatchObject({ changes: false, replaces: [] });
    expect(await allocation.diff("allocations", created.outs, kept.inputs)).toMatchObject({ changes: true, replaces: [] });
  });

  test("`previous` seats a new allocation; once it exists its own olds win", async () => {
    const previous: LabAllocations = { subnets: { office: ["172.16.7.0/24"] }, addresses: {}, vnis: {} };
    const fresh = await allocation.check({}, { demand, previous });
    expect((fresh.inputs.allocations as LabAllocations).subnets.office).toEqual(["172.16.7.0/24"]);
    const later = await allocation.check(fresh.inputs, { demand, previous: { ...previous, subnets: { office: ["172.16.8.0/24"] } } });
    expect((later.inputs.allocations as LabAllocations).subnets.office).toEqual(["172.16.7.0/24"]);
  });

  test("a malformed demand is a check failure naming the property", async () => {
    const bad = await allocation.check({}, { demand: { segments: [{ kind: "lan", id: "x", members: [] }], salt: "" } });
    expect(bad.failures).toEqual([{ property: "demand", reason: expect.stringMatching(/^demand\.segments\.0\.members: /) }]);
  });
});
