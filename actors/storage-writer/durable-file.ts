/**
 * Writes that are on disk when they resolve, shared by the file sink and the spool: both
 * acknowledge a batch only after these.
 */
import fsp from "node:fs/promises";

/**
 * A refused write whose bytes could not be cut back out of its file: they may be read later as
 * if stored. The file's writer must take no more writes (later ones would land behind them).
 */
export class WriteNotUndoneError extends Error {
  constructor(
    readonly file: string,
    readonly writeError: unknown,
    readonly undoError: unknown,
  ) {
    super(
      `${file}: a write failed (${describe(writeError)}) and cutting its bytes back out failed too (${describe(undoError)}); ` +
        "no more writes are taken until a restart, and the file's tail may hold that refused batch",
    );
    this.name = "WriteNotUndoneError";
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes all of `bytes` at `position`, then fdatasyncs. A failure refuses the batch, so its bytes must not stay in the file: some may
 * have reached it (a write that got partway, a datasync that failed after the write), and a
 * later, shorter write at the same place would leave whole records or lines of the refused
 * batch behind itself, or a restart would read them. The file is cut back to `position`, and
 * the cut made durable, before the error is thrown; if that fails too, the error is a
 * WriteNotUndoneError.
 */
export async function writeDurably(handle: fsp.FileHandle, bytes: Uint8Array, position: number, file: string): Promise<void> {
  try {
    await writeFully(handle, bytes, position);
    await handle.datasync();
  } catch (writeError) {
    await cutBack(handle, position, file, writeError);
    throw writeError;
  }
}

/**
 * Cuts the file back to `at` (ftruncate, then fdatasync, so the cut itself is on disk): what a
 * refused write may have left there goes. If that fails, throws a WriteNotUndoneError naming
 * `cause`, the failure that refused the write.
 */
export async function cutBack(handle: fsp.FileHandle, at: number, file: string, cause: unknown): Promise<void> {
  try {
    await handle.truncate(at);
    await handle.datasync();
  } catch (undoError) {
    throw new WriteNotUndoneError(file, cause, undoError);
  }
}

/** Writes all of `bytes` at `position`: a write may take fewer bytes than asked. */
export async function writeFully(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written, position + written)).bytesWritten;
}

/** Makes a new file's directory entry durable: fdatasync on the file does not, so an fsynced batch could vanish with its name. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
