/** Host key checks against pins and known_hosts (plain, hashed, patterns, ports, revoked). */
import { createHmac, randomBytes } from "node:crypto";
import { checkKnownHosts, fingerprint, matchesPin } from "../../provider/ssh/hostkeys";

function blob(type: string, body: Buffer): Buffer {
  const name = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(name.length);
  return Buffer.concat([len, name, body]);
}

const key = blob("ssh-ed25519", randomBytes(32));
const other = blob("ssh-ed25519", randomBytes(32));
const line = (hosts: string, k: Buffer) => `${hosts} ssh-ed25519 ${k.toString("base64")}`;

test("pins: a key line or a SHA256 fingerprint", () => {
  expect(fingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  expect(matchesPin(fingerprint(key), key)).toBe(true);
  expect(matchesPin(`ssh-ed25519 ${key.toString("base64")} root@lab`, key)).toBe(true);
  expect(matchesPin(fingerprint(other), key)).toBe(false);
});

test("known_hosts: plain names, patterns, non-default ports", () => {
  expect(checkKnownHosts(line("lab1,10.0.0.1", key), "10.0.0.1", 22, key)).toEqual({ ok: true });
  expect(checkKnownHosts(line("10.0.0.*", key), "10.0.0.7", 22, key)).toEqual({ ok: true });
  expect(checkKnownHosts(line("10.0.0.*,!10.0.0.7", key), "10.0.0.7", 22, key)).toMatchObject({ failure: "host-key-unknown" });
  expect(checkKnownHosts(line("[10.0.0.1]:2222", key), "10.0.0.1", 2222, key)).toEqual({ ok: true });
  expect(checkKnownHosts(line("10.0.0.1", key), "10.0.0.1", 2222, key)).toMatchObject({ failure: "host-key-unknown" });
});

test("known_hosts: hashed names", () => {
  const salt = randomBytes(20);
  const hash = createHmac("sha1", salt).update("10.0.0.1").digest("base64");
  expect(checkKnownHosts(line(`|1|${salt.toString("base64")}|${hash}`, key), "10.0.0.1", 22, key)).toEqual({ ok: true });
});

test("known_hosts: a different key of the same type is a mismatch; a revoked key is refused", () => {
  const verdict = checkKnownHosts(line("10.0.0.1", other), "10.0.0.1", 22, key);
  expect(verdict).toMatchObject({ ok: false, failure: "host-key-mismatch" });
  expect(JSON.stringify(verdict)).toContain(fingerprint(key));
  const revoked = `@revoked ${line("*", key)}\n${line("10.0.0.1", key)}`;
  expect(checkKnownHosts(revoked, "10.0.0.1", 22, key)).toMatchObject({ failure: "host-key-mismatch" });
});
