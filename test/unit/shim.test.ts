/** The provider object that goes into state: small, secret-free, and running the installed package. */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serializeFunction } from "@pulumi/pulumi/runtime/closure/serializeClosure";
import { shim } from "../../sdk/shim";

const requireFromString = require("require-from-string") as (code: string, filename: string) => { handler(): any };

test("the serialized shim is small, holds no secret, and loads the provider when the host configures it", async () => {
  const provider = shim("Namespace");
  const serialized = await serializeFunction(() => provider, { allowSecrets: true });
  expect(serialized.containsSecrets).toBe(false);
  expect(serialized.text.length).toBeLessThan(750);
  expect(serialized.text).toContain('require("pulumi-netns/provider")');
  expect(serialized.text).not.toMatch(/ssh2|zod/);

  // As the dynamic provider host does: evaluate the text from the program's folder, then call it.
  const handler = requireFromString(serialized.text, join(__dirname, "..", "..", "program.js")).handler();
  expect(handler.check).toBeUndefined();
  await handler.configure({ config: {} });
  const checked = await handler.check({}, { connection: { host: "10.0.0.1" }, name: "red" });
  expect(checked.inputs).toMatchObject({ name: "red", loopbackUp: true, connection: { host: "10.0.0.1" } });
  const refused = await handler.check({}, { connection: { host: "10.0.0.1" }, name: "red; reboot" });
  expect(refused.failures[0].property).toBe("name");
});

test("when the package cannot be loaded, every method fails with the reason (the host would skip a missing delete or read)", async () => {
  const provider = shim("Namespace");
  const serialized = await serializeFunction(() => provider, { allowSecrets: true });
  // Evaluated from a folder where no pulumi-netns is installed.
  const handler = requireFromString(serialized.text, join(tmpdir(), "elsewhere", "program.js")).handler();
  await handler.configure({ config: {} });
  for (const method of ["check", "diff", "create", "read", "update", "delete"]) {
    await expect(handler[method]("id", {})).rejects.toThrow(/Cannot find module 'pulumi-netns\/provider'/);
  }
});
