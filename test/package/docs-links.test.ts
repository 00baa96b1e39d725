// The README and docs/ link only inside the repository, and every such link
// names a file that exists (and, with a #fragment, a heading in it).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { repoRoot } from "./consumer-project.js";

const docs = suite("README and docs/ links");

const pages = [
  "README.md",
  ...readdirSync(join(repoRoot, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, "")
    .replace(/[^\p{L}\p{N} -]/gu, "")
    .replace(/ /g, "-");
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(file, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1] as string)));
}

/** Markdown links and images outside code blocks: [text](target). */
function linksOf(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
}

docs("every relative link names a file in the repository, and a heading when it has a #fragment", () => {
  const broken: string[] = [];
  for (const page of pages) {
    const base = dirname(join(repoRoot, page));
    for (const link of linksOf(readFileSync(join(repoRoot, page), "utf8"))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue;
      const [path = "", fragment] = link.split("#");
      const target = path === "" ? join(repoRoot, page) : resolve(base, path);
      const inside = relative(repoRoot, target);
      if (inside.startsWith("..")) {
        broken.push(`${page}: ${link} points outside the repository`);
        continue;
      }
      if (!existsSync(target)) {
        broken.push(`${page}: ${link} (no such file)`);
        continue;
      }
      if (fragment !== undefined && target.endsWith(".md") && !anchorsOf(target).has(fragment))
        broken.push(`${page}: ${link} (no such heading)`);
    }
  }
  assert.equal(broken, []);
});

docs("absolute links go only to the project's own pages and the few sites the text is about", () => {
  const allowed = [/^https:\/\/github\.com\/engram-dev\/engram-serverevents/, /^https:\/\/stately\.ai\/inspect/];
  const outside: string[] = [];
  for (const page of pages) {
    for (const link of linksOf(readFileSync(join(repoRoot, page), "utf8"))) {
      if (/^https?:/i.test(link) && !allowed.some((a) => a.test(link))) outside.push(`${page}: ${link}`);
    }
  }
  assert.equal(outside, []);
});

docs.run();
