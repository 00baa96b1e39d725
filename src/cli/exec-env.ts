/**
 * What an `--exec` child may see of the sidecar's environment. By default it
 * gets neither ENGRAM_TOKEN nor the user info of an ENGRAM_* URL (a command
 * that prints its environment would otherwise put the token into the
 * sidecar's log); the operator opts in with `--exec-env-token`. The secrets
 * found here are also what `redactSecrets` removes from logged child output.
 */

import { trimBearerToken } from "../bearer-token.js";

/** The variable holding the bearer token. */
const tokenVariable = "ENGRAM_TOKEN";

/** What replaces a secret in logged output. */
export const redactedMark = "[redacted]";

export interface ExecEnvironment {
  /** The child's environment before the ENGRAM_* removal variables. */
  env: NodeJS.ProcessEnv;
  /** Every secret seen (token, URL user and password, raw and decoded), longest first. */
  secrets: string[];
}

export interface ExecEnvironmentOptions {
  /** The sidecar's environment. */
  base: Readonly<Record<string, string | undefined>>;
  /** Pass ENGRAM_TOKEN and URL user info through unchanged. Defaults to false. */
  passSecrets?: boolean;
  /** More URLs whose user info is a secret (e.g. `--url`). Defaults to none. */
  extraUrls?: ReadonlyArray<string | undefined>;
}

/** Builds the child's environment and the list of secrets to redact from its output. */
export function createExecEnvironment(options: ExecEnvironmentOptions): ExecEnvironment {
  const passSecrets = options.passSecrets ?? false;
  const env: NodeJS.ProcessEnv = {};
  const secrets = new Set<string>();
  const token = options.base[tokenVariable];
  if (token !== undefined && token !== "") secrets.add(token);
  // The bridge trims the token (a token file's final newline): the child may print the trimmed form.
  const trimmed = token === undefined ? "" : trimBearerToken(token);
  if (trimmed !== "") secrets.add(trimmed);
  for (const url of options.extraUrls ?? []) if (url !== undefined) for (const s of userInfoOf(url)) secrets.add(s);
  for (const [name, value] of Object.entries(options.base)) {
    if (value === undefined) continue;
    if (!name.startsWith("ENGRAM_")) {
      env[name] = value;
      continue;
    }
    if (name === tokenVariable) {
      if (passSecrets) env[name] = value;
      continue;
    }
    const info = userInfoOf(value);
    for (const s of info) secrets.add(s);
    env[name] = passSecrets || info.length === 0 ? value : withoutUserInfo(value);
  }
  return { env, secrets: [...secrets].sort((a, b) => b.length - a.length) };
}

/** Replaces every occurrence of every secret in `text`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(redactedMark);
  return out;
}

/**
 * The secret parts of `scheme://user:pass@host` (raw and percent-decoded):
 * the password and the whole user info, or the user alone when there is no
 * password (`https://TOKEN@host`); [] when the value has no user info.
 */
function userInfoOf(value: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(value.trim());
  if (m === null) return [];
  const info = m[1] as string;
  const colon = info.indexOf(":");
  const parts = colon < 0 ? [info] : [info, info.slice(colon + 1)];
  const out = new Set<string>();
  for (const part of parts) {
    if (part === "") continue;
    out.add(part);
    try {
      out.add(decodeURIComponent(part));
    } catch {
      // Not percent-encoded text: the raw form is enough.
    }
  }
  return [...out];
}

function withoutUserInfo(value: string): string {
  return value.trim().replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1");
}
