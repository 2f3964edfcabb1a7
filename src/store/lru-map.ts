/**
 * A map of at most `maxEntries` keys kept in least-recently-used order: `set` makes a key the
 * most recent, and beyond the bound the least recent goes, handed to `onEvict` (a cache closing
 * what the entry holds). `get` does not change the order; set the entry again to mark a use.
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>();
  readonly #maxEntries: number;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;

  constructor(maxEntries: number, onEvict?: (key: K, value: V) => void) {
    this.#maxEntries = maxEntries;
    this.#onEvict = onEvict;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Stores `value` as the most recently used and evicts the least recently used beyond the bound. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    while (this.#entries.size > this.#maxEntries) {
      const [oldest, entry] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      this.#onEvict?.(oldest, entry);
    }
  }

  /** Removes `key` without calling `onEvict`; true when it was there. */
  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  keys(): IterableIterator<K> {
    return this.#entries.keys();
  }

  get size(): number {
    return this.#entries.size;
  }
}
