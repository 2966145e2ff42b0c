/**
 * Disk errors on real files: handles opened through `fs/promises` while this is installed are
 * the real ones, except that writes, fdatasync and ftruncate fail with EIO while the counts last. No
 * filesystem here fails an fdatasync on demand, and a refused batch's bytes are only at stake
 * when one does. The real `open` is back once the test that installed them ends.
 */
import fsp from "node:fs/promises";
import { onTestFinished, vi } from "vitest";

export interface DiskFaults {
  /** The next this many writes fail (before writing anything). */
  writeFailures: number;
  /** The next this many fdatasyncs fail. */
  datasyncFailures: number;
  /** The next this many ftruncates fail. */
  truncateFailures: number;
  /** When set, every fdatasync first waits for the promise this returns (to hold one while others run). */
  datasyncGate: (() => Promise<void>) | null;
}

function eio(call: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: i/o error, ${call}`), { code: "EIO", errno: -5, syscall: call });
}

/** Installs the faults for files whose path `affects`, for the rest of the running test. */
export function injectDiskFaults(affects: (file: string) => boolean): DiskFaults {
  const faults: DiskFaults = { writeFailures: 0, datasyncFailures: 0, truncateFailures: 0, datasyncGate: null };
  const realOpen = fsp.open.bind(fsp);
  const spy = vi.spyOn(fsp, "open").mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
    const handle = await realOpen(...args);
    if (!affects(String(args[0]))) return handle;
    const write = handle.write.bind(handle) as (...args: unknown[]) => Promise<unknown>;
    const datasync = handle.datasync.bind(handle);
    const truncate = handle.truncate.bind(handle);
    (handle as { write: unknown }).write = async (...writeArgs: unknown[]) => {
      if (faults.writeFailures > 0) {
        faults.writeFailures--;
        throw eio("write");
      }
      return write(...writeArgs);
    };
    handle.datasync = async () => {
      if (faults.datasyncGate) await faults.datasyncGate();
      if (faults.datasyncFailures > 0) {
        faults.datasyncFailures--;
        throw eio("fdatasync");
      }
      return datasync();
    };
    handle.truncate = async (length?: number) => {
      if (faults.truncateFailures > 0) {
        faults.truncateFailures--;
        throw eio("ftruncate");
      }
      return truncate(length);
    };
    return handle;
  });
  onTestFinished(() => spy.mockRestore());
  return faults;
}
