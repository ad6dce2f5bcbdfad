/** Host key checks: a pinned key or fingerprint, or an OpenSSH known_hosts file. Pure logic. */
import { createHash, createHmac } from "node:crypto";

export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The algorithm name at the start of an SSH public key blob (uint32 length + name). */
export function keyType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

export type HostKeyVerdict = { ok: true } | { ok: false; failure: "host-key-unknown" | "host-key-mismatch"; detail: string };

/** Compares a presented key with a pin: "SHA256:..." or "ssh-ed25519 AAAA... [comment]". */
export function matchesPin(pin: string, keyBlob: Buffer): boolean {
  const trimmed = pin.trim();
  if (trimmed.startsWith("SHA256:")) return trimmed.replace(/=+$/, "") === fingerprint(keyBlob);
  const fields = trimmed.split(/\s+/);
  const base64 = fields.length >= 2 ? fields[1] : fields[0];
  return Buffer.from(base64, "base64").equals(keyBlob);
}

interface KnownHostLine {
  marker?: string;
  hosts: string;
  key: Buffer;
}

function parseKnownHosts(text: string): KnownHostLine[] {
  const lines: KnownHostLine[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
    if (fields.length < 3) continue;
    lines.push({ marker, hosts: fields[0], key: Buffer.from(fields[2], "base64") });
  }
  return lines;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

function hostMatches(patterns: string, lookup: string): boolean {
  if (patterns.startsWith("|1|")) {
    const [, , salt, hash] = patterns.split("|");
    const digest = createHmac("sha1", Buffer.from(salt, "base64")).update(lookup).digest("base64");
    return digest === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(",")) {
    if (pattern.startsWith("!")) {
      if (globToRegExp(pattern.slice(1)).test(lookup)) return false;
    } else if (globToRegExp(pattern).test(lookup)) {
      matched = true;
    }
  }
  return matched;
}

/** known_hosts names a host as "host" on port 22 and "[host]:port" elsewhere. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function checkKnownHosts(text: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const lookup = knownHostsName(host, port);
  const entries = parseKnownHosts(text).filter((e) => hostMatches(e.hosts, lookup));
  if (entries.some((e) => e.marker === "@revoked" && e.key.equals(keyBlob))) {
    return { ok: false, failure: "host-key-mismatch", detail: `the key ${fingerprint(keyBlob)} is marked @revoked` };
  }
  const plain = entries.filter((e) => e.marker === undefined);
  if (plain.some((e) => e.key.equals(keyBlob))) return { ok: true };
  const type = keyType(keyBlob);
  const sameType = plain.filter((e) => keyType(e.key) === type);
  if (sameType.length > 0) {
    return {
      ok: false,
      failure: "host-key-mismatch",
      detail:
        `the host presented ${type} key ${fingerprint(keyBlob)} but known_hosts has ` +
        `${sameType.map((e) => fingerprint(e.key)).join(", ")} for ${lookup}. ` +
        "Someone may be impersonating the host, or its key was changed; verify before updating known_hosts.",
    };
  }
  return unknownKey(host, port, keyBlob);
}

export function unknownKey(host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const fp = fingerprint(keyBlob);
  return {
    ok: false,
    failure: "host-key-unknown",
    detail:
      `the host's ${keyType(keyBlob)} key ${fp} is not known. Check it out of band ` +
      `(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host), then pin it with ` +
      `connection.hostKey: "${fp}", or add it to known_hosts (ssh-keyscan -p ${port} ${host}).`,
  };
}

export function pinMismatch(pin: string, keyBlob: Buffer): HostKeyVerdict {
  return {
    ok: false,
    failure: "host-key-mismatch",
    detail:
      `the host presented ${keyType(keyBlob)} key ${fingerprint(keyBlob)}, which does not match ` +
      `connection.hostKey (${pin.trim().split(/\s+/).slice(0, 2).join(" ").slice(0, 80)}). ` +
      "Someone may be impersonating the host, or its key was changed.",
  };
}
