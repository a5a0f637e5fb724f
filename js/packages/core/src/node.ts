// @skinscreen/core/node: the Node entry point: onnxruntime-node backend and bundles on disk.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BundleSource } from "./segmenter.js";

export { nodeBackend, type NodeBackendOptions } from "./backends/node.js";

/** A bundle directory on disk (e.g. ~/.cache/skinscreen/bundles/litemedsam). */
export function dirBundle(dir: string): BundleSource & { readBytes(path: string): Promise<Uint8Array> } {
  return {
    location: dir,
    readText: (p) => readFile(join(dir, p), "utf8"),
    readBytes: async (p) => new Uint8Array(await readFile(join(dir, p))),
    sha256: async (bytes) => createHash("sha256").update(bytes).digest("hex"),
  };
}
