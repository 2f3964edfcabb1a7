import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/store/lru-map.ts';

describe('the bounded map of the caches', () => {
  it('keeps at most its bound, evicting the least recently set and handing it over', () => {
    const evicted: [string, number][] = [];
    const map = new LruMap<string, number>(2, (key, value) => evicted.push([key, value]));
    map.set('a', 1);
    map.set('b', 2);
    // Setting `a` again marks its use: `b` is now the least recent.
    map.set('a', 10);
    map.set('c', 3);
    expect([...map.keys()]).toEqual(['a', 'c']);
    expect(evicted).toEqual([['b', 2]]);
    expect(map.get('a')).toBe(10);
    expect(map.size).toBe(2);
  });

  it('does not reorder on get, and deletes without handing over', () => {
    const evicted: string[] = [];
    const map = new LruMap<string, number>(2, (key) => evicted.push(key));
    map.set('a', 1);
    map.set('b', 2);
    expect(map.get('a')).toBe(1);
    map.set('c', 3);
    expect(evicted).toEqual(['a']);
    expect(map.delete('b')).toBe(true);
    expect(map.delete('b')).toBe(false);
    expect(evicted).toEqual(['a']);
    expect([...map.keys()]).toEqual(['c']);
  });
});
