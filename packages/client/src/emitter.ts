/**
 * Listener signatures by event name. `never[]` parameters accept every listener type
 * (a function taking anything is assignable to one taking `never`), without `any`.
 */
type Listeners = Record<string, (...args: never[]) => void>;

/**
 * A minimal typed event emitter. A listener that throws does not disturb the client or
 * the other listeners: its error is rethrown from a fresh task (as an uncaught error).
 */
export class Emitter<M extends Listeners> {
  /**
   * Stored without their signatures, so that `Emitter<M>` (and `Room<E>`) does not turn
   * invariant in `M`: `on`, `off` and `emit` type them.
   */
  #listeners: { [K in keyof M]?: Set<Listeners[string]> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M & string>(name: K, listener: M[K]): () => void {
    (this.#listeners[name] ??= new Set()).add(listener);
    return () => this.off(name, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof M & string>(name: K, listener: M[K]): void {
    this.#listeners[name]?.delete(listener);
  }

  protected emit<K extends keyof M & string>(name: K, ...args: Parameters<M[K]>): void {
    for (const listener of [...(this.#listeners[name] ?? [])]) {
      try {
        (listener as M[K])(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}
