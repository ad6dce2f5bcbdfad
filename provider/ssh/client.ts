/**
 * Dialing: the only module that loads ssh2. Verifies the host key, maps failures to the four
 * things a user must tell apart (unreachable, auth failed, host key, timeout), retries only what
 * can heal (an unreachable host), and reaches a target through an optional jump host.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Client, ClientChannel, ConnectConfig } from "ssh2";
import type { Connection, JumpHost } from "../connection";
import { targetLabel } from "../connection";
import { ConnectionError } from "../errors";
import { checkKnownHosts, HostKeyVerdict, matchesPin, pinMismatch } from "./hostkeys";

const DIAL_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 15_000;

export interface Dialed {
  /** Opens a channel running `command` on the target. */
  exec(command: string): Promise<ClientChannel>;
  onClose(listener: () => void): void;
  close(): void;
}

function verifyHostKey(endpoint: JumpHost, keyBlob: Buffer): HostKeyVerdict {
  if (endpoint.insecureSkipHostKeyCheck) return { ok: true };
  if (endpoint.hostKey !== undefined) {
    return matchesPin(endpoint.hostKey, keyBlob) ? { ok: true } : pinMismatch(endpoint.hostKey, keyBlob);
  }
  const file = endpoint.knownHostsFile ?? join(homedir(), ".ssh", "known_hosts");
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    // A missing file knows no hosts: the verdict below says how to pin the key.
  }
  return checkKnownHosts(text, endpoint.host, endpoint.port, keyBlob);
}

function classify(label: string, err: Error & { level?: string; code?: string }, verdict?: HostKeyVerdict): ConnectionError {
  if (verdict && !verdict.ok) return new ConnectionError(verdict.failure, label, verdict.detail);
  if (err.level === "client-authentication") {
    return new ConnectionError("auth-failed", label, "the server refused every configured credential (key, password, agent)");
  }
  if (err.level === "client-timeout") {
    return new ConnectionError("timeout", label, `no SSH handshake within ${READY_TIMEOUT_MS / 1000}s`);
  }
  return new ConnectionError("unreachable", label, err.code ? `${err.code} (${err.message})` : err.message);
}

function dialOnce(endpoint: JumpHost, sock?: ClientChannel): Promise<Client> {
  const { Client } = require("ssh2") as typeof import("ssh2");
  const label = targetLabel(endpoint);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let verdict: HostKeyVerdict | undefined;
    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      privateKey: endpoint.privateKey,
      passphrase: endpoint.passphrase,
      password: endpoint.password,
      agent: endpoint.agent,
      sock,
      readyTimeout: READY_TIMEOUT_MS,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(endpoint, key);
        return verdict.ok;
      },
    };
    client.once("ready", () => {
      client.removeAllListeners("error");
      client.on("error", () => {
        // Errors after the handshake surface as "close", which the pool handles.
      });
      resolve(client);
    });
    client.once("error", (err) => {
      client.end();
      reject(classify(label, err, verdict));
    });
    client.connect(config);
  });
}

async function dialWithRetry(endpoint: JumpHost, sock?: ClientChannel): Promise<Client> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dialOnce(endpoint, sock);
    } catch (err) {
      const healable = err instanceof ConnectionError && (err.failure === "unreachable" || err.failure === "timeout");
      if (!healable || attempt >= DIAL_ATTEMPTS || sock) throw err;
      await new Promise((r) => setTimeout(r, 300 * 2 ** attempt));
    }
  }
}

function forward(jump: Client, host: string, port: number, label: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    jump.forwardOut("127.0.0.1", 0, host, port, (err, stream) =>
      err ? reject(new ConnectionError("unreachable", label, `the jump host could not reach it: ${err.message}`)) : resolve(stream),
    );
  });
}

export async function dial(connection: Connection): Promise<Dialed> {
  const label = targetLabel(connection);
  let jump: Client | undefined;
  let client: Client;
  if (connection.proxy) {
    jump = await dialWithRetry(connection.proxy);
    try {
      client = await dialWithRetry(connection, await forward(jump, connection.host, connection.port, label));
    } catch (err) {
      jump.end();
      throw err;
    }
  } else {
    client = await dialWithRetry(connection);
  }
  const closed = () => jump?.end();
  client.on("close", closed);
  return {
    exec: (command) =>
      new Promise((resolve, reject) =>
        client.exec(command, (err, channel) =>
          err ? reject(new ConnectionError("unreachable", label, `could not open a session: ${err.message}`)) : resolve(channel),
        ),
      ),
    onClose: (listener) => client.on("close", listener),
    close: () => {
      client.end();
      jump?.end();
    },
  };
}
