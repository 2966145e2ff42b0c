import pino, { type Logger } from "pino";

/**
 * The product's one structured logger. Moleculer logs through pino too (see moleculer.config.ts),
 * so every line on stdout is one JSON object with the same fields.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}

export type { Logger };
