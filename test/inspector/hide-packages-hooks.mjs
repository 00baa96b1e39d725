// Module resolution hooks for test/inspector/optional-deps.test.ts: the
// packages named in the comma-separated `data` (the registration's) resolve
// as if they were not installed, so a child process shows what a consumer
// without the optional packages gets.
let hidden = [];
const seen = new Set();

export function initialize(data) {
  hidden = String(data ?? "")
    .split(",")
    .filter(Boolean);
}

export async function resolve(specifier, context, next) {
  const hit = hidden.find((p) => specifier === p || specifier.startsWith(`${p}/`));
  if (hit !== undefined) {
    seen.add(hit);
    const err = new Error(`Cannot find package '${specifier}' (hidden by the test)`);
    err.code = "ERR_MODULE_NOT_FOUND";
    throw err;
  }
  return next(specifier, context);
}
