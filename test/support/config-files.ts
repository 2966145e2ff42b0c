/** Helpers for tests of configuration files: a temp dir to write them into, and the ConfigError a call throws. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { ConfigError } from "../../config/env";

/** A temp dir removed after the file's tests, and a writer of JSON (or raw text) files in it. */
export function configFileDir(prefix: string): { dir: string; writeFile: (name: string, content: unknown) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const writeFile = (name: string, content: unknown): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    return file;
  };
  return { dir, writeFile };
}

/** The ConfigError `fn` throws (any other outcome fails the test). */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}
