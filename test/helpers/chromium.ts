/**
 * Launches a headless Chromium for the browser tests, from the first of:
 *
 * 1. `CHROMIUM_PATH` (must exist: a path that was asked for and is missing is
 *    an error, not a reason to pick another browser);
 * 2. a system Chromium on PATH (`chromium`, `chromium-browser`,
 *    `google-chrome`);
 * 3. the build inside the `@sparticuz/chromium` devDependency, which ships
 *    Chromium in the npm package itself and unpacks it to the temp directory
 *    on first use (about 1.5 s), so `npm ci && npm test` needs nothing but
 *    Node and the npm registry.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { chromium, type Browser, type LaunchOptions } from "playwright-core";

/** Where the browser came from, for the suite's figures line. */
export type ChromiumSource = "CHROMIUM_PATH" | "system" | "@sparticuz/chromium";

export interface FoundChromium {
  executablePath: string;
  source: ChromiumSource;
}

export interface LaunchedChromium extends FoundChromium {
  browser: Browser;
}

/**
 * Flags for a headless run in a container, as root (hence --no-sandbox), with
 * no network chatter of the browser's own.
 */
export const chromiumArgs: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--no-zygote",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const systemNames = ["chromium", "chromium-browser", "google-chrome"];

function onPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Finds a Chromium executable (unpacking the bundled one if need be). */
export async function findChromium(env: Record<string, string | undefined> = process.env): Promise<FoundChromium> {
  const asked = env.CHROMIUM_PATH;
  if (asked !== undefined && asked !== "") {
    if (!existsSync(asked)) throw new Error(`CHROMIUM_PATH is ${asked}, which does not exist`);
    return { executablePath: asked, source: "CHROMIUM_PATH" };
  }
  for (const name of systemNames) {
    const found = onPath(name, env.PATH);
    if (found !== undefined) return { executablePath: found, source: "system" };
  }
  let bundled: { executablePath(input?: string): Promise<string> };
  try {
    bundled = (await import("@sparticuz/chromium")).default;
  } catch (err) {
    throw new Error(
      `no Chromium: CHROMIUM_PATH is unset, none of ${systemNames.join(", ")} is on PATH, and @sparticuz/chromium (a devDependency) cannot be loaded — run npm ci (${String(err)})`,
    );
  }
  return { executablePath: await bundled.executablePath(), source: "@sparticuz/chromium" };
}

/** Finds and launches a headless Chromium. Close `browser` when done. */
export async function launchChromium(options: Omit<LaunchOptions, "executablePath"> = {}): Promise<LaunchedChromium> {
  const found = await findChromium();
  const browser = await chromium.launch({ args: [...chromiumArgs], ...options, executablePath: found.executablePath });
  return { ...found, browser };
}
