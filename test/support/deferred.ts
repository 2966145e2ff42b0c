/** A promise with its resolve/reject handles, for tests that control when async work finishes. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface Settlement {
  state: "pending" | "fulfilled" | "rejected";
  error?: unknown;
}

/** Watches a promise so a test can assert, synchronously, whether it has settled yet and how. */
export function track(p: Promise<unknown>): Settlement {
  const t: Settlement = { state: "pending" };
  p.then(
    () => (t.state = "fulfilled"),
    (e: unknown) => {
      t.state = "rejected";
      t.error = e;
    },
  );
  return t;
}
