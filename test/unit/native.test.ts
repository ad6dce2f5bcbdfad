import { checkConfig, configInputs, diffConfig, NativeProvider, ownerOfUrn, revealed, secretsAsIn } from "../../provider/native/provider";
import { owner } from "../../provider/owner";

const secret = (value: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value });

test("secrets are unwrapped at every depth", () => {
  expect(revealed({ a: secret("k"), b: [secret({ c: secret(1) })], d: "x" })).toEqual({ a: "k", b: [{ c: 1 }], d: "x" });
});

test("provider config sent as JSON text (as generated SDKs send it) is read as values; unknown keys go", () => {
  expect(
    configInputs({ host: "h", port: "2222", sudo: "true", proxy: '{"host":"j"}', privateKey: secret("KEY"), version: "0.1.0" }),
  ).toEqual({
    host: "h",
    port: 2222,
    sudo: true,
    proxy: { host: "j" },
    privateKey: "KEY",
  });
});

test("bad provider config names the property; a provider that had a host keeps one", () => {
  expect(checkConfig({}, { host: "h", port: "70000" })).toEqual([{ property: "port", reason: expect.stringContaining("65535") }]);
  // The default provider of a program whose resources name their own providers has no host.
  expect(checkConfig({}, {})).toEqual([]);
  expect(checkConfig({}, { host: "" })).toEqual([{ property: "host", reason: expect.any(String) }]);
  expect(checkConfig({}, { host: "h", privateKey: secret("KEY") })).toEqual([]);
  expect(checkConfig({ host: "h" }, {})).toEqual([{ property: "host", reason: expect.stringContaining("keeps one") }]);
});

test("a credential changes the provider in place; another host, port or jump host replaces its resources, naming what moved", () => {
  const base = { host: "a", privateKey: "k1" };
  expect(diffConfig(base, { ...base })).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
  expect(diffConfig(base, { host: "a", port: "22", privateKey: "k1" }).changes).toBe(false);
  expect(diffConfig(base, { ...base, privateKey: "k2" })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  expect(diffConfig(base, { ...base, host: "b" })).toEqual({ changes: true, replaces: ["host"], deleteBeforeReplace: true });
  expect(diffConfig(base, { ...base, port: 2222 })).toMatchObject({ replaces: ["port"] });
  expect(diffConfig(base, { ...base, proxy: { host: "j" } })).toMatchObject({ replaces: ["proxy"] });
  expect(diffConfig({ ...base, proxy: { host: "j" } }, { ...base, proxy: { host: "j", privateKey: "k3" } })).toMatchObject({
    replaces: [],
  });
  expect(diffConfig(base, { ...base, host: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" })).toMatchObject({ replaces: ["host"] });
});

test("what the program marked secret comes back marked, property by property, as the engine would mark it", () => {
  const given = { name: "web", environment: { TOKEN: secret("t"), MODE: "x" }, command: secret(["sh", "-c", "serve"]) };
  const out = { name: "web", environment: { TOKEN: "t", MODE: "x" }, command: ["sh", "-c", "serve"], pid: 7 };
  expect(secretsAsIn(out, given)).toEqual({
    name: "web",
    environment: { TOKEN: secret("t"), MODE: "x" },
    command: secret(["sh", "-c", "serve"]),
    pid: 7,
  });
  expect(secretsAsIn({ list: ["a", "b"] }, { list: ["a", secret("b")] })).toEqual({ list: secret(["a", "b"]) });
});

test("the owner comes from the URN: stable, and in the shape objects carry", () => {
  const urn = "urn:pulumi:dev::lab::netns:index:Veth::red";
  expect(ownerOfUrn(urn)).toBe(ownerOfUrn(urn));
  expect(ownerOfUrn(urn)).toMatch(/^[0-9a-f]{16}@lab\/dev$/);
  expect(owner.safeParse(ownerOfUrn(urn)).success).toBe(true);
  expect(ownerOfUrn(urn)).not.toBe(ownerOfUrn("urn:pulumi:dev::lab::netns:index:Veth::blue"));
  expect(() => ownerOfUrn("nonsense")).toThrow("not a resource URN");
});

test("check validates a resource without a connection, adds its owner, and names a bad property", async () => {
  const provider = new NativeProvider("0.0.0", "{}");
  const urn = "urn:pulumi:dev::lab::netns:index:Namespace::red";
  expect(await provider.check(urn, {}, { name: "red" })).toEqual({
    inputs: { name: "red", loopbackUp: true, owner: ownerOfUrn(urn) },
    failures: undefined,
  });
  const bad = await provider.check(urn, {}, { name: "no/slash" });
  expect(bad.failures).toEqual([{ property: "name", reason: expect.any(String) }]);
  await expect(provider.check("urn:pulumi:dev::lab::netns:index:Nope::x", {}, {})).rejects.toThrow('unknown resource kind "Nope"');
  await expect(provider.check("urn:pulumi:dev::lab::aws:s3:Bucket::x", {}, {})).rejects.toThrow('unknown resource type "aws:s3:Bucket"');
});

test("a resource on a provider without a host is refused in check, saying how to give one", async () => {
  const provider = new NativeProvider("0.0.0", "{}");
  provider.configure({});
  const urn = "urn:pulumi:dev::lab::netns:index:Namespace::red";
  expect((await provider.check(urn, {}, { name: "red" })).failures).toEqual([
    { property: "", reason: expect.stringContaining("netns:host") },
  ]);
  await expect(provider.create(urn, { name: "red" })).rejects.toThrow("no host");
  // A Lab's allocation touches no host.
  expect(
    (await provider.check("urn:pulumi:dev::lab::netns:index:Lab$netns:index:LabAllocation::lab/allocations", {}, { demand: {} })).failures,
  ).not.toEqual([{ property: "", reason: expect.stringContaining("netns:host") }]);
  expect(() => provider.configure({ host: "h", port: 0 })).toThrow("invalid provider configuration: port");
});
