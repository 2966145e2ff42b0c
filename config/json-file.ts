/**
 * Reading a JSON configuration file named by an environment variable, and validating it with a
 * JSON Schema. Every failure is a ConfigError that names the variable, the file and, for a
 * schema violation, the JSON path of the offending value (`$.tenants.acme.burst must be >= 1`),
 * so an operator can fix the file without reading code.
 */
import fs from "node:fs";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import { ConfigError } from "./config-error";

/** Files are operator-written configuration, not data: anything bigger is a mistake. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

export function compileFileSchema(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

export function readJsonFile(variable: string, file: string): unknown {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(variable, `${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Throws a ConfigError listing every violation (JSON path and problem) when `data` does not match. */
export function checkJson(variable: string, file: string, validate: ValidateFunction, data: unknown): void {
  if (validate(data)) return;
  // A bad name inside `propertyNames` is reported twice by ajv (the name's own error, then
  // "property name is invalid"): keep the first, which says what a name must look like.
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== "propertyNames");
  const problems = errors.map(describeError);
  throw new ConfigError(variable, `${file}: ${[...new Set(problems)].join("; ")}`);
}

/** `$`, `$.tenants.acme`, `$.keys[2].tenant`, `$["odd key"]`. */
export function jsonPath(pointer: string): string {
  if (pointer === "") return "$";
  let out = "$";
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^(0|[1-9][0-9]*)$/.test(key)) out += `[${key}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

function describeError(e: ErrorObject): string {
  const at = jsonPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  if (e.propertyName !== undefined) return `${at}: invalid name ${JSON.stringify(e.propertyName)} (${e.message ?? "invalid"})`;
  switch (e.keyword) {
    case "required":
      return `${at}.${String(p.missingProperty)} is required`;
    case "additionalProperties":
      return `${at}: unknown field ${JSON.stringify(p.additionalProperty)}`;
    case "enum":
      return `${at} must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return `${at} ${e.message ?? `is invalid (${e.keyword})`}`;
  }
}
