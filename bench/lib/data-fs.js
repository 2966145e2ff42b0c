"use strict";
/**
 * Where the bench's servers keep their data, and what kind of filesystem that is.
 *
 * This VM's root filesystem is ext4 *without a journal*. On such a filesystem ext4's inode
 * allocator checks every free inode it considers for a recent deletion (`recently_deleted()` in
 * fs/ext4/ialloc.c runs only when `s_journal` is NULL), and ClickHouse creates and deletes
 * thousands of small files (every insert is a part of ~30 files; merges delete parts). `perf`
 * on clickhouse-server during 100-row inserts put ~45% of its CPU in that kernel path, and a
 * file create at ~0.9 ms. A production data volume (ext4 with its default journal, or XFS) has
 * no such scan. So by default the bench formats a sparse image file on this same disk as ext4
 * with a journal (mkfs.ext4's default), loop-mounts it and keeps every server's data there: the
 * bytes still go to this machine's disk, through the filesystem an operator would put there.
 * It needs root and loop devices; without them (or with `--storage-dir`), the data stays where
 * the caller says and the report names that filesystem.
 *
 * The loop device reads and writes the image with direct I/O, as a disk would: a buffered loop
 * device caches every page twice (in the image's filesystem and in the image file's) and writes
 * it back through its worker thread. Buffered, the first writeback of ClickHouse's data (30 s
 * after it was written, the kernel's dirty_expire) kept the kernel's loop, flush and
 * ext4-rsv-conversion workers at ~1 of the 2 cores for 1-2 s, inside scenario (d)'s spike. With
 * direct I/O, seconds with that much kernel time were about a third as many and (d) missed its
 * p99 in 4 of 16 runs instead of 6 of 16 (bench/README.md, "Ninth round").
 */
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");

/** Mount point, filesystem type and device of the filesystem holding `dir` (from /proc/self/mountinfo). */
function mountOf(dir) {
  const real = fs.realpathSync(dir);
  let best = null;
  for (const line of fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    const mountPoint = left.split(" ")[4].replace(/\\040/g, " ");
    const [type, source] = right.split(" ");
    const inside = real === mountPoint || real.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`);
    if (inside && (best === null || mountPoint.length >= best.mountPoint.length)) best = { mountPoint, type, source };
  }
  return best;
}

/** A readable description of the filesystem holding `dir`, e.g. "ext4 without a journal (/dev/vda on /)". */
function describeFilesystem(dir) {
  const m = mountOf(dir);
  if (m === null) return "unknown filesystem";
  let kind = m.type;
  if (m.type === "ext4" || m.type === "ext3") {
    // jbd2 lists one directory per journaled device, named `<device>-<journal inode>`.
    const device = path.basename(m.source);
    const journals = fs.existsSync("/proc/fs/jbd2") ? fs.readdirSync("/proc/fs/jbd2") : [];
    kind += journals.some((j) => j.startsWith(`${device}-`)) ? " with a journal" : " without a journal";
  }
  const loop = loopDeviceMode(m.source);
  return `${kind} (${m.source}${loop ? `, ${loop}` : ""} on ${m.mountPoint})`;
}

/** "direct I/O loop device" / "buffered loop device" for a /dev/loopN, null for anything else. */
function loopDeviceMode(source) {
  const name = path.basename(source);
  if (!/^loop\d+$/.test(name)) return null;
  try {
    return fs.readFileSync(`/sys/block/${name}/loop/dio`, "utf8").trim() === "1" ? "direct I/O loop device" : "buffered loop device";
  } catch {
    return null;
  }
}

function haveTool(name) {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Formats and mounts a journaled ext4 scratch filesystem (a sparse image of `sizeGb` in the
 * system temp dir, loop-mounted). Returns `{ dir, image, unmount() }`, or `{ dir: null, reason }`
 * when this machine cannot (not root, not Linux, no mkfs.ext4 / losetup, mount refused).
 */
function mountJournaledScratch({ sizeGb = 32 } = {}) {
  if (process.platform !== "linux") return { dir: null, reason: "not Linux" };
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return { dir: null, reason: "not root (mount needs it)" };
  for (const tool of ["mkfs.ext4", "losetup", "mount", "umount"]) {
    if (!haveTool(tool)) return { dir: null, reason: `${tool} not found` };
  }
  const base = fs.mkdtempSync(path.join(os.tmpdir(), SCRATCH_PREFIX));
  const image = path.join(base, "data.ext4");
  const dir = path.join(base, "mnt");
  fs.mkdirSync(dir);
  // Lets a later run tell this scratch from one whose run is still going (see removeStaleScratch).
  fs.writeFileSync(path.join(base, "owner.pid"), String(process.pid));
  try {
    // Sparse: the image takes disk space only as the servers write.
    fs.closeSync(fs.openSync(image, "w"));
    fs.truncateSync(image, sizeGb * 1024 ** 3);
    execFileSync("mkfs.ext4", ["-q", "-F", "-j", image], { stdio: "pipe" });
    const device = execFileSync("losetup", ["--find", "--show", "--direct-io=on", image], { encoding: "utf8", stdio: "pipe" }).trim();
    try {
      execFileSync("mount", [device, dir], { stdio: "pipe" });
    } finally {
      // On a mounted device this only sets autoclear: it goes with the unmount (as with `mount -o loop`);
      // on a mount that failed it frees the device.
      execFileSync("losetup", ["--detach", device], { stdio: "pipe" });
    }
    // The servers may run as other users (clickhouse-server drops to its own user in some packagings).
    fs.chmodSync(dir, 0o1777);
  } catch (error) {
    fs.rmSync(base, { recursive: true, force: true });
    return { dir: null, reason: `could not mount a loop image: ${String(error.stderr || error.message).trim().split("\n")[0]}` };
  }
  return { dir, image, unmount: () => unmountAndRemove(base, dir) };
}

/** Unmounts a scratch's `dir` (lazily if it is busy) and deletes its `base` with the image. */
function unmountAndRemove(base, dir) {
  try {
    // The loop device is autoclear (losetup --detach while mounted): it goes with the mount.
    execFileSync("umount", [dir], { stdio: "pipe" });
  } catch {
    execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  }
  fs.rmSync(base, { recursive: true, force: true });
}

const SCRATCH_PREFIX = "ingest-bench-fs-";

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/**
 * Unmounts and deletes the scratch filesystems of earlier runs that died without cleaning up
 * (SIGKILL, a crash): those whose owner process is gone. Scratch of a run still going is left
 * alone. Returns the directories removed.
 */
function removeStaleScratch(tmp = os.tmpdir()) {
  const removed = [];
  for (const name of fs.readdirSync(tmp)) {
    if (!name.startsWith(SCRATCH_PREFIX)) continue;
    const base = path.join(tmp, name);
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(base, "owner.pid"), "utf8"));
    } catch {
      // No owner file: a run between mkdtemp and writing it, or not ours; leave it.
      continue;
    }
    if (!Number.isInteger(owner) || processAlive(owner)) continue;
    const dir = path.join(base, "mnt");
    const mounted = mountOf(dir);
    if (mounted !== null && mounted.mountPoint === fs.realpathSync(dir)) unmountAndRemove(base, dir);
    else fs.rmSync(base, { recursive: true, force: true });
    removed.push(base);
  }
  return removed;
}

module.exports = { mountJournaledScratch, removeStaleScratch, describeFilesystem, mountOf };
