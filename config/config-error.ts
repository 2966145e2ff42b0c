/**
 * A bad configuration value. Its own module so that the loaders of configuration files
 * (config/keys-file.ts, config/tenants.ts) and config/env.ts can all throw it without importing
 * each other in a circle. The message starts with the variable's name; the entry point prints it
 * and exits 2 before anything listens.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}
