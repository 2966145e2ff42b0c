import pino, { type Logger as PinoLogger } from "pino";

/**
 * The product's one structured logger. Moleculer logs through pino too (see moleculer.config.ts),
 * so every line on stdout is one JSON object with the same fields.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): PinoLogger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}

type LogMethod = (obj: unknown, msg?: string) => void;

/**
 * What library modules need from a logger: satisfied both by a pino logger and by a Moleculer
 * service's `this.logger` (which is pino underneath), so modules stay free of Moleculer.
 */
export interface Logger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  fatal: LogMethod;
}

export type { PinoLogger };
