/**
 * Dialing: the only module that loads ssh2. Verifies the host key, maps failures to the four
 * things a user must tell apart (unreachable, auth failed, host key, timeout), retries only what
 * heals soon (a refused connection), and reaches a target through an optional jump host, all
 * within one connect budget.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Client, ClientChannel, ConnectConfig, PseudoTtyOptions } from "ssh2";
import type { Connection, JumpHost } from "../connection";
import { targetLabel } from "../connection";
import { ConnectionError } from "../errors";
import { checkKnownHosts, HostKeyVerdict, matchesPin, pinMismatch } from "./hostkeys";

const DIAL_ATTEMPTS = 3;
/** A whole dial, jump host included, ends within this: a host that drops packets fails in time. */
const CONNECT_BUDGET_MS = 25_000;
const CONNECT_BUDGET = `${CONNECT_BUDGET_MS / 1000}s`;

export interface Dialed {
  /** Opens a channel running `command` on the target, on a pseudo-terminal when `pty` is given. */
  exec(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel>;
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

/** One failed attempt: what to tell the user, and whether another attempt may do better. */
interface FailedAttempt {
  error: ConnectionError;
  refused: boolean;
}

/** `asker` is who got no answer, when not this machine (a jump host). */
function notAnswered(label: string, port: number, asker?: string): ConnectionError {
  return new ConnectionError(
    "timeout",
    label,
    `the host did not answer${asker ? ` ${asker}` : ""} within ${CONNECT_BUDGET} (is it down, or does a firewall drop port ${port}?)`,
  );
}

function classify(
  endpoint: JumpHost,
  err: Error & { level?: string; code?: string },
  verdict: HostKeyVerdict | undefined,
  handshakeDone: boolean,
): ConnectionError {
  const label = targetLabel(endpoint);
  if (verdict && !verdict.ok) return new ConnectionError(verdict.failure, label, verdict.detail);
  if (err.level === "client-authentication") {
    return new ConnectionError("auth-failed", label, "the server refused every configured credential (key, password, agent)");
  }
  if (err.level === "client-timeout") {
    return handshakeDone
      ? new ConnectionError("timeout", label, `the SSH handshake was done but login did not finish within ${CONNECT_BUDGET}`)
      : notAnswered(label, endpoint.port);
  }
  return new ConnectionError("unreachable", label, err.code ? `${err.code} (${err.message})` : err.message);
}

function dialOnce(endpoint: JumpHost, deadline: number, sock?: ClientChannel): Promise<Client> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded when a host is dialled, never by a serialized provider
  const { Client } = require("ssh2") as typeof import("ssh2");
  return new Promise((resolve, reject) => {
    const client = new Client();
    let verdict: HostKeyVerdict | undefined;
    let handshakeDone = false;
    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      privateKey: endpoint.privateKey,
      passphrase: endpoint.passphrase,
      password: endpoint.password,
      agent: endpoint.agent,
      sock,
      // ssh2 counts this from the TCP connect to the end of login.
      readyTimeout: Math.max(1, deadline - Date.now()),
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(endpoint, key);
        return verdict.ok;
      },
    };
    client.once("handshake", () => {
      handshakeDone = true;
    });
    client.once("ready", () => {
      client.removeAllListeners("error");
      client.on("error", () => {
        // Errors after the handshake surface as "close", which the pool handles.
      });
      resolve(client);
    });
    client.once("error", (err: Error & { code?: string }) => {
      client.end();
      const failed: FailedAttempt = {
        error: classify(endpoint, err, verdict, handshakeDone),
        refused: err.code === "ECONNREFUSED",
      };
      reject(failed);
    });
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 throws at once for a key it cannot read; its message never holds the key or passphrase.
      const reason = err instanceof Error ? err.message : String(err);
      reject({
        error: new ConnectionError(
          "auth-failed",
          targetLabel(endpoint),
          `the private key could not be used: ${reason} (wrong passphrase?)`,
        ),
        refused: false,
      });
    }
  });
}

/**
 * Retries only a refused connection (sshd restarting, a host booting): silence or a route error
 * would fail the same way again, only later.
 */
async function dialWithRetry(endpoint: JumpHost, deadline: number, sock?: ClientChannel): Promise<Client> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dialOnce(endpoint, deadline, sock);
    } catch (err) {
      const { error, refused } = err as FailedAttempt;
      const pause = 300 * 2 ** attempt;
      if (!refused || attempt >= DIAL_ATTEMPTS || sock || Date.now() + pause >= deadline) throw error;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/** A channel to the target through the jump host; the jump host's sshd waits for the TCP connect. */
function forward(jump: Client, target: Connection, deadline: number): Promise<ClientChannel> {
  const label = targetLabel(target);
  return new Promise((resolve, reject) => {
    // A late channel goes away with the jump host, which the caller ends.
    const timer = setTimeout(() => reject(notAnswered(label, target.port, "the jump host")), deadline - Date.now());
    jump.forwardOut("127.0.0.1", 0, target.host, target.port, (err, stream) => {
      clearTimeout(timer);
      if (err) reject(new ConnectionError("unreachable", label, `the jump host could not reach it: ${err.message}`));
      else resolve(stream);
    });
  });
}

export async function dial(connection: Connection): Promise<Dialed> {
  const label = targetLabel(connection);
  const deadline = Date.now() + CONNECT_BUDGET_MS;
  let jump: Client | undefined;
  let client: Client;
  if (connection.proxy) {
    jump = await dialWithRetry(connection.proxy, deadline);
    try {
      client = await dialWithRetry(connection, deadline, await forward(jump, connection, deadline));
    } catch (err) {
      jump.end();
      throw err;
    }
  } else {
    client = await dialWithRetry(connection, deadline);
  }
  const closed = () => jump?.end();
  client.on("close", closed);
  return {
    exec: (command, pty) =>
      new Promise((resolve, reject) =>
        client.exec(command, pty ? { pty } : {}, (err, channel) =>
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
