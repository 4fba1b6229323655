// The sharp contender of bench/bench_peers.py: render every file listed on stdin (one path a line) to
// the sizes in argv, either as three pipelines from the input (sharp's documented usage) or as one
// decode cascaded to the sizes (decode + resize to the largest once, then resize that raw image).
// Prints one JSON line: whole-process CPU seconds (process.cpuUsage: every thread, libuv's pool too) for
// the files after one warm-up render, and the output sizes of the first file (a sanity check).
//
// usage: node sharp_runner.mjs MODULE_DIR MODE QUALITY SIZE... < listing
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const [moduleDir, mode, quality, ...sizeArgs] = process.argv.slice(2);
const sharp = createRequire(path.join(moduleDir, "package.json"))("sharp");
const sizes = sizeArgs.map(Number).sort((a, b) => b - a);
const Q = Number(quality);
sharp.concurrency(1); // libvips threads per pipeline: one core, as VIPS_CONCURRENCY=1 for thumbx
sharp.cache(false); // thumbx runs with libvips' operation cache off, too

const upright = (image) => (typeof image.autoOrient === "function" ? image.autoOrient() : image.rotate());
const inside = { fit: "inside", withoutEnlargement: true };
// One corpus photo is a few bytes short: thumbx accepts it (after checking the missing part is invisible),
// Pillow too (LOAD_TRUNCATED_IMAGES); sharp's default failOn ("warning") would refuse it.
const load = { failOn: "none" };

async function threePipelines(input) {
  const outs = [];
  for (const size of sizes) {
    outs.push(await upright(sharp(input, load)).resize(size, size, inside).toColourspace("srgb")
      .jpeg({ quality: Q }).toBuffer({ resolveWithObject: true }));
  }
  return outs;
}

async function oneDecode(input) {
  const base = await upright(sharp(input, load)).resize(sizes[0], sizes[0], inside).toColourspace("srgb")
    .raw().toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  const outs = [await sharp(base.data, raw).jpeg({ quality: Q }).toBuffer({ resolveWithObject: true })];
  for (const size of sizes.slice(1)) {
    outs.push(await sharp(base.data, raw).resize(size, size, inside).jpeg({ quality: Q })
      .toBuffer({ resolveWithObject: true }));
  }
  return outs;
}

const render = mode === "one-decode" ? oneDecode : threePipelines;
const files = readFileSync(0, "utf8").split("\n").filter(Boolean).map((f) => readFileSync(f));
const first = await render(files[0]); // warm-up: module load, codec init
const start = process.cpuUsage();
let failures = 0;
for (const data of files) {
  try {
    await render(data);
  } catch {
    failures += 1;
  }
}
const used = process.cpuUsage(start);
console.log(JSON.stringify({
  cpu_s: (used.user + used.system) / 1e6,
  images: files.length,
  failures,
  first: first.map((o) => [o.info.width, o.info.height]),
  versions: { sharp: sharp.versions.sharp, vips: sharp.versions.vips },
}));
