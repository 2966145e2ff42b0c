/**
 * Disk errors on real files: handles opened through `fs/promises` while this is installed are
 * the real ones, except that fdatasync and ftruncate fail with EIO while the counts last. No
 * filesystem here fails an fdatasync on demand, and a refused batch's bytes are only at stake
 * when one does. The real `open` is back once the test that installed them ends.
 */
import fsp from "node:fs/promises";
import { onTestFinished, vi } from "vitest";

export interface DiskFaults {
  /** The next this many fdatasyncs fail. */
  datasyncFailures: number;
  /** The next this many ftruncates fail. */
  truncateFailures: number;
}

function eio(call: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EIO: i/o error, ${call}`), { code: "EIO", errno: -5, syscall: call });
}

/** Installs the faults for files whose path `affects`, for the rest of the running test. */
export function injectDiskFaults(affects: (file: string) => boolean): DiskFaults {
  const faults: DiskFaults = { datasyncFailures: 0, truncateFailures: 0 };
  const realOpen = fsp.open.bind(fsp);
  const spy = vi.spyOn(fsp, "open").mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
    const handle = await realOpen(...args);
    if (!affects(String(args[0]))) return handle;
    const datasync = handle.datasync.bind(handle);
    const truncate = handle.truncate.bind(handle);
    handle.datasync = async () => {
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
