/**
 * Input validation for `check`. During preview, values that depend on resources not yet created
 * arrive as a sentinel string; they are not validated now (the engine checks again once known).
 */
import type { z } from "zod";

export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The engine's wrapper of a secret value, as a provider that accepts secrets receives it: { SIG: SECRET, value }. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";
export const isSecretWrapper = (v: Record<string, unknown>): v is { value: unknown } => v[SECRET_SIG] === SECRET;
export const secretWrapper = (value: unknown) => ({ [SECRET_SIG]: SECRET, value });

export function containsSecret(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsSecret);
  return isRecord(value) && (isSecretWrapper(value) || Object.values(value).some(containsSecret));
}

export interface Failure {
  property: string;
  reason: string;
}

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

function touchesUnknown(value: unknown, path: readonly PropertyKey[]): boolean {
  let cursor = value;
  for (const key of path) {
    if (cursor === UNKNOWN) return true;
    if (!cursor || typeof cursor !== "object") return false;
    cursor = (cursor as Record<PropertyKey, unknown>)[key];
  }
  return containsUnknown(cursor);
}

export function validate<T>(
  schema: z.ZodType<T>,
  news: Record<string, unknown>,
): { ok: true; value: T | Record<string, unknown> } | { ok: false; failures: Failure[] } {
  const parsed = schema.safeParse(news);
  if (parsed.success) return { ok: true, value: parsed.data };
  const anyUnknown = containsUnknown(news);
  const failures = parsed.error.issues
    .filter((issue) => !(anyUnknown && (issue.path.length === 0 || touchesUnknown(news, issue.path))))
    .map((issue) => ({ property: issue.path.map(String).join(".") || "(inputs)", reason: issue.message }));
  if (failures.length > 0) return { ok: false, failures };
  return { ok: true, value: news };
}
