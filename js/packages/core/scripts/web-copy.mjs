// Copy the browser part of the core's build (dist/, no Node entry) to the web page's static
// folder, src/skinscreen/web/static/core/, where `skinscreen serve` serves it (committed, so a
// pip-installed skinscreen needs no Node). `--check`: exit 1 when the committed copy is stale.
//
// Usage (in js/): npm run build && npm run web --workspace @skinscreen/core [-- --check]

import { readFileSync, writeFileSync, mkdirSync, existsSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "../dist");
export const WEB_DIR = resolve(here, "../../../../src/skinscreen/web/static/core");
// the browser-safe modules: everything index.js imports (not node.js / backends/node.js)
export const WEB_FILES = ["index.js", "errors.js", "manifest.js", "backend.js", "pipeline.js", "segmenter.js", "live.js", "backends/web.js"];
const HEADER = "// Generated from js/packages/core/src by `make js` (npm run build && npm run web): do not edit.\n";

export function expected(file) {
  return HEADER + readFileSync(join(dist, file), "utf8");
}

export function stale() {
  const bad = WEB_FILES.filter((f) => !existsSync(join(WEB_DIR, f)) || readFileSync(join(WEB_DIR, f), "utf8") !== expected(f));
  const listed = new Set(WEB_FILES);
  const walk = (d, pre = "") =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name), `${pre}${e.name}/`) : [`${pre}${e.name}`]));
  const extra = existsSync(WEB_DIR) ? walk(WEB_DIR).filter((f) => !listed.has(f)) : [];
  return [...bad, ...extra];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const s = stale();
    if (s.length) {
      console.error(`src/skinscreen/web/static/core is not the current build of js/packages/core (${s.join(", ")}): run make js and commit it`);
      process.exit(1);
    }
    console.log("web copy of @skinscreen/core is current");
  } else {
    rmSync(WEB_DIR, { recursive: true, force: true });
    for (const f of WEB_FILES) {
      mkdirSync(dirname(join(WEB_DIR, f)), { recursive: true });
      writeFileSync(join(WEB_DIR, f), expected(f));
    }
    console.log(`wrote ${WEB_FILES.length} files to ${WEB_DIR}`);
  }
}
