import { checkConfig, configInputs, diffConfig, NativeProvider, ownerOfUrn, revealed } from "../../provider/native/provider";
import { owner } from "../../provider/owner";

const secret = (value: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value });

test("secrets are unwrapped at every depth", () => {
  expect(revealed({ a: secret("k"), b: [secret({ c: secret(1) })], d: "x" })).toEqual({ a: "k", b: [{ c: 1 }], d: "x" });
});

test("provider config sent as JSON text (as generated SDKs send it) is read as values; unknown keys go", () => {
  expect(configInputs({ host: "h", port: "2222", sudo: "true", proxy: '{"host":"j"}', privateKey: secret("KEY"), version: "0.1.0" })).toEqual({
    host: "h",
    port: 2222,
    sudo: true,
    proxy: { host: "j" },
    privateKey: "KEY",
  });
});

test("bad provider config names the property", () => {
  expect(checkConfig({ host: "h", port: "70000" })).toEqual([{ property: "port", reason: expect.stringContaining("65535") }]);
  // The default provider of a program whose resources name their own providers has no host.
  expect(checkConfig({})).toEqual([]);
  expect(checkConfig({ host: "" })).toEqual([{ property: "host", reason: expect.any(String) }]);
  expect(checkConfig({ host: "h", privateKey: secret("KEY") })).toEqual([]);
});

test("a credential changes the provider in place; another host, port or jump host replaces its resources", () => {
  const base = { host: "a", privateKey: "k1" };
  expect(diffConfig(base, { ...base })).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
  expect(diffConfig(base, { host: "a", port: "22", privateKey: "k1" }).changes).toBe(false);
  expect(diffConfig(base, { ...base, privateKey: "k2" })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  for (const moved of [{ host: "b" }, { port: 2222 }, { proxy: { host: "j" } }]) {
    expect(diffConfig(base, { ...base, ...moved })).toMatchObject({ changes: true, replaces: ["host"] });
  }
  expect(diffConfig(base, { ...base, host: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" })).toMatchObject({ replaces: ["host"] });
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
  expect(await provider.check(urn, {}, { name: "red" })).toEqual({ inputs: { name: "red", loopbackUp: true, owner: ownerOfUrn(urn) }, failures: undefined });
  const bad = await provider.check(urn, {}, { name: "no/slash" });
  expect(bad.failures).toEqual([{ property: "name", reason: expect.any(String) }]);
  await expect(provider.check("urn:pulumi:dev::lab::netns:index:Nope::x", {}, {})).rejects.toThrow('unknown resource kind "Nope"');
  await expect(provider.check("urn:pulumi:dev::lab::aws:s3:Bucket::x", {}, {})).rejects.toThrow('unknown resource type "aws:s3:Bucket"');
});

test("nothing reaches a host before the provider knows its connection", async () => {
  const provider = new NativeProvider("0.0.0", "{}");
  provider.configure({ host: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" });
  await expect(provider.create("urn:pulumi:dev::lab::netns:index:Namespace::red", { name: "red" })).rejects.toThrow("provider has no host");
  provider.configure({});
  await expect(provider.create("urn:pulumi:dev::lab::netns:index:Namespace::red", { name: "red" })).rejects.toThrow("netns:host");
  expect(() => provider.configure({ host: "h", port: 0 })).toThrow("invalid provider configuration: port");
});
