/**
 * Writes that are on disk when they resolve, shared by the file sink and the spool: both
 * acknowledge a batch only after these.
 */
import fsp from "node:fs/promises";

/** Writes all of `bytes` at `position` (a write may take fewer bytes than asked), then fdatasyncs. */
export async function writeDurably(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
  await handle.datasync();
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
